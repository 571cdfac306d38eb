"""Built-in tasks: the papers' benchmarks in their real formats and embedded stand-ins."""

from mmalign.data.coco import COCOCaptions
from mmalign.data.hfm import HFMTask
from mmalign.data.mmsa import CMUMOSEI, CMUMOSI, URFunny
from mmalign.data.mvsa import MVSAMulti, MVSASingle
from mmalign.data.synth.captions import SynthCaptions
from mmalign.data.synth.clash import SynthClash
from mmalign.data.synth.events import SynthEvents
from mmalign.data.synth.mosi import SynthMOSI
from mmalign.data.synth.sarcasm import SynthSarcasm
from mmalign.data.synth.scenes import SynthScenes
from mmalign.data.synth.sentiment import SynthSentiment
from mmalign.data.synth.speakers import SynthSpeakers
from mmalign.data.synth.where import SynthWhere
from mmalign.data.synth.xmedianet import SynthXMediaNet
from mmalign.data.xmedianet import XMediaNetTask
from mmalign.registry import RegistryView

TASKS = (
    MVSASingle,
    MVSAMulti,
    HFMTask,
    CMUMOSI,
    CMUMOSEI,
    URFunny,
    XMediaNetTask,
    COCOCaptions,
    SynthSentiment,
    SynthSarcasm,
    SynthMOSI,
    SynthXMediaNet,
    SynthCaptions,
    SynthClash,
    SynthSpeakers,
    SynthEvents,
    SynthScenes,
    SynthWhere,
)


def register(registry: RegistryView) -> None:
    """Add the built-in tasks to the registry."""
    for task in TASKS:
        registry.add("task", task.name, task)
