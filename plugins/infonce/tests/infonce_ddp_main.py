"""``python infonce_ddp_main.py STRATEGY``: one infonce run on the toy category task.

A real separate entry point, so that a test can start it under torchrun."""

import sys

from infonce_toys import ToyPlugin, toy_sets

from mmalign import plugins
from mmalign.runner import RunRequest, execute
from mmalign.testing import _ToyPlugin

if __name__ == "__main__":
    host = plugins.get_host()
    host.add_module(_ToyPlugin(), "toy", "mmalign-testing")
    host.add_module(ToyPlugin(), "infonce-toys", "mmalign-infonce-tests")
    sets = toy_sets(strategy=sys.argv[1], **{"train.epochs": 3, "fusion.config.dropout": 0.0})
    execute(RunRequest(method="infonce", task="toy-categories", quiet=True, sets=sets))
