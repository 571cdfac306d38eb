"""Built-in tasks: the papers' benchmarks in their real formats and embedded stand-ins."""

from mmalign.data.mvsa import MVSAMulti, MVSASingle
from mmalign.data.synth.sentiment import SynthSentiment
from mmalign.registry import RegistryView

TASKS = (MVSASingle, MVSAMulti, SynthSentiment)


def register(registry: RegistryView) -> None:
    """Add the built-in tasks to the registry."""
    for task in TASKS:
        registry.add("task", task.name, task)
