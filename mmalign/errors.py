"""Exceptions whose messages are meant to be read by a person at a terminal."""


class MMAlignError(Exception):
    """Base class: the CLI prints these without a traceback."""


class PluginError(MMAlignError):
    """A plugin could not be loaded or registered something inconsistent."""


class RegistryError(MMAlignError):
    """A name is unknown or registered twice."""


class ConfigError(MMAlignError):
    """A configuration key or value is invalid."""


class DataError(MMAlignError):
    """A dataset is missing, unreadable or malformed."""


class ResumeError(MMAlignError):
    """A run cannot be resumed as asked."""
