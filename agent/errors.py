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


class UnreadableImageError(CaptureError):
    """One image file cannot be read (not an image, truncated, too large, ...): ``path`` is the file and ``reason``
    says why, in a few words; a folder of screenshots skips such a file and goes on."""

    def __init__(self, message: str, *, path: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason or message


class StoreError(FerAgentError):
    """The session database cannot be opened, written, or is in use by another fer-agent."""


def unexpected_error(error: BaseException) -> str:
    """An error fer-agent did not expect (a bug, or a fault of a library under it) in one line: its type and its text,
    the text's line breaks folded into spaces."""
    text = " ".join(str(error).split())
    return f"unexpected {type(error).__name__}" + (f": {text}" if text else "")
