"""Errors a user can meet: the CLI prints them as one line, never a traceback."""


class FomoError(Exception):
    """A problem with the user's input or environment, stated as what, where and how to fix."""

    exit_status = 2
    """What the command line exits with after printing the error."""


class SpecError(FomoError):
    """The spec (file or override) is invalid."""


class PluginError(FomoError):
    """A plugin failed to load or registered something invalid."""


class TrainingDiverged(FomoError):
    """The training loss (or the weights) stopped being finite: the run stops; its last checkpoint, all finite, stays."""

    exit_status = 3
