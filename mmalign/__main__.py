"""``python -m mmalign`` is the ``mmalign`` command."""

from mmalign.cli import entry

entry()
