"""The benchmark runner: composes a method with a task and trains it."""

from mmalign.runner.run import RunRequest, RunResult, execute

__all__ = ["RunRequest", "RunResult", "execute"]
