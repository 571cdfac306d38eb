"""``python tests/toy_cli.py ARGS``: the mmalign CLI with the toy plugin registered.

Used by tests that need a real separate process (SIGKILL, torchrun)."""

import sys

from mmalign import plugins
from mmalign.cli import entry
from mmalign.testing import _ToyPlugin

if __name__ == "__main__":
    plugins.get_host().add_module(_ToyPlugin(), "toy", "mmalign-testing")
    sys.argv = ["mmalign", *sys.argv[1:]]
    entry()
