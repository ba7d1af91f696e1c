"""Errors a user can meet: the CLI prints them as one line, never a traceback."""


class FomoError(Exception):
    """A problem with the user's input or environment, stated as what, where and how to fix."""


class SpecError(FomoError):
    """The spec (file or override) is invalid."""


class PluginError(FomoError):
    """A plugin failed to load or registered something invalid."""
