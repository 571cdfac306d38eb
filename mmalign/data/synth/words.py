"""Tweet-like captions whose sentiment a sentence encoder can read.

Templates per sentiment are filled with varied everyday subjects and decorated
with sentiment-free tweet noise (mentions, topic hashtags, short links), so the
wording, not a fixed token, carries the sentiment.
"""

from __future__ import annotations

import numpy as np

SUBJECTS = (
    "the weekend trip", "my morning coffee", "the new phone", "our team's match",
    "the city park", "the concert last night", "grandma's garden", "the school bus",
    "the quarterly report", "the train station", "this restaurant", "the beach",
    "my new bike", "the weather", "the office kitchen", "the airport queue",
    "the family dinner", "the neighborhood", "our project demo", "the hiking trail",
    "the new album", "the football game", "the bakery downtown", "my cat",
    "the road trip", "the museum", "the hotel room", "the software update",
    "the farmers market", "the garden party", "the exam results", "the movie premiere",
    "the parade", "the flight home", "the local library", "the snow day",
    "the holiday market", "the birthday party", "the morning commute", "the science fair",
)  # fmt: skip

TEMPLATES = {
    "positive": (
        "Absolutely loving {s} today, what a wonderful feeling!",
        "{S} made my whole day, so happy right now",
        "Best day ever with {s}. Grateful and smiling :)",
        "So proud of {s}, this is amazing!",
        "Can't stop smiling about {s}, pure joy",
        "What a beautiful time with {s}, feeling blessed",
        "{S} was fantastic, highly recommend!",
        "Yay! {S} turned out perfect",
        "Thrilled with {s}, love it so much",
        "Good vibes only: {s} is brilliant",
        "{S} is delightful, I am so excited",
        "Happiest moment: {s}. Love it!",
    ),
    "negative": (
        "{S} was a complete disaster, so disappointed",
        "I hate {s}. Worst day ever.",
        "Ugh, {s} ruined everything, feeling awful",
        "So sad about {s}, this is heartbreaking :(",
        "Terrible experience with {s}, never again",
        "{S} is broken again and I am furious",
        "Can't believe how bad {s} was, total mess",
        "Feeling miserable after {s}",
        "{S} made me angry and upset all day",
        "Awful news about {s}, really depressing",
        "{S} is a nightmare, I am so frustrated",
        "Crying over {s}. Horrible.",
    ),
    "neutral": (
        "Photo of {s} taken this afternoon.",
        "{S} is scheduled for Tuesday at 10 am.",
        "Here is {s}, posted for reference.",
        "Update on {s}: details in the link below.",
        "{S} from the north side of the street.",
        "Another picture of {s} for the archive.",
        "{S}, as seen on the way to work.",
        "Notes about {s} from the meeting.",
        "The report on {s} is now available online.",
        "{S} this morning, nothing else to add.",
        "Information about {s} for the newsletter.",
        "{S} at 3 pm, second floor.",
    ),
}

TOPIC_TAGS = ("#photo", "#today", "#city", "#weekend", "#update", "#news", "#life", "#travel")
#: words with characters outside ASCII that cp1252 can encode (MVSA-style repairs)
ACCENTED = ("café", "naïve", "“really”", "jalapeño", "résumé", "Zürich", "déjà vu")


def caption(rng: np.random.Generator, sentiment: str, subject: str | None = None) -> str:
    """One tweet-like caption of ``sentiment`` about ``subject`` (a random one if unset)."""
    if subject is None:
        subject = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
    templates = TEMPLATES[sentiment]
    text = templates[int(rng.integers(len(templates)))]
    text = text.replace("{S}", subject[0].upper() + subject[1:]).replace("{s}", subject)
    return decorate(rng, text)


def decorate(rng: np.random.Generator, text: str) -> str:
    """Sentiment-free tweet noise: retweet prefix, mention, topic tag, link."""
    if rng.random() < 0.15:
        text = f"RT @{user(rng)}: {text}"
    if rng.random() < 0.1:
        text = f"@{user(rng)} {text}"
    if rng.random() < 0.4:
        text += " " + TOPIC_TAGS[int(rng.integers(len(TOPIC_TAGS)))]
    if rng.random() < 0.2:
        text += " http://t.co/" + "".join(rng.choice(list("abcdefXYZ0123456789"), 8))
    return text


def user(rng: np.random.Generator) -> str:
    name = ("anna", "jdoe", "mike", "sam", "lee", "kat", "tom", "zoe")[int(rng.integers(8))]
    return f"{name}_{int(rng.integers(10, 99))}"
