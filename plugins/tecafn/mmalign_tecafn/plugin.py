"""Registers the tecafn components with mmalign."""

import mmalign


@mmalign.hookimpl
def mmalign_register(registry):
    """Nothing registered yet."""
