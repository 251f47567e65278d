"""fer-agent runtime: sources, face finding, classification, tracking, store, live view, CLI."""

import os
from importlib import metadata

# Nothing leaves the machine and nothing else lands on it: onnxruntime's own telemetry (from 1.2x on, on every
# platform) would keep a device id and queued events in the user's cache; its documented opt-out is this variable,
# read when onnxruntime first starts, so it is set before any module of ours imports it. OpenCV's and FFmpeg's
# warnings (a damaged video frame, a codec probe) would be written over the live view: errors only.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def installed_version() -> str:
    """The installed fer-agent's version ("unknown" when run from a checkout that was never installed)."""
    try:
        return metadata.version("fer-agent")
    except metadata.PackageNotFoundError:
        return "unknown"
