"""Errors a user can cause. The CLI turns each into one line on stderr and an exit status."""


class BodyfitError(Exception):
    """Base class: the message is shown to the user as is, on one line."""


class InputError(BodyfitError):
    """An input file is missing, unreadable, corrupt or of the wrong kind."""


class KeypointFileError(InputError):
    """A keypoint JSON file does not follow any supported layout."""


class BodyModelError(BodyfitError):
    """A body model file is missing or malformed."""


class OutputError(BodyfitError):
    """Results cannot be written where the user asked."""


class DeviceError(BodyfitError):
    """The requested compute device is not available."""


class MethodUnavailable(BodyfitError):
    """A known method whose weights or code are not part of this build (or not trained for this body model)."""


class EngineError(BodyfitError):
    """The engine that spreads inputs over workers (`--engine ray`) cannot run: not installed, unreachable."""
