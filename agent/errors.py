"""Typed errors raised by the library; the CLI turns each into one line on stderr and a non-zero exit code."""


class FerAgentError(Exception):
    """Base class of every error fer-agent reports to the user."""


class DatasetError(FerAgentError):
    """A dataset file or folder is missing, malformed, or does not match its companion file."""


class ModelError(FerAgentError):
    """A model file is missing, corrupt, or does not follow the ONNX contract."""


class DetectorModelError(ModelError):
    """The face-detector model cannot be found, fetched or verified."""


class CaptureError(FerAgentError):
    """A source cannot be opened or read: no display, a missing monitor, an unreadable video or image."""


class StoreError(FerAgentError):
    """The session database cannot be opened, written, or is in use by another fer-agent."""
