"""Export a checkpoint to ONNX with the fer-agent contract, and write the model card beside it."""

from __future__ import annotations

import datetime as dt
import logging
import shlex
import warnings
from pathlib import Path

import onnx
import torch

from fer_agent.checksum import sha256_of
from fer_agent.labels import EMOTIONS
from fer_agent.training.card import write_card
from fer_agent.training.data import FACE_SIZE
from fer_agent.training.model import ProbabilityHead, count_parameters
from fer_agent.training.train import TrainConfig, load_checkpoint, model_from_checkpoint
from fer_agent.vision.classifier import LABELS_KEY, VERSION_KEY

log = logging.getLogger(__name__)

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"


def training_command(config: TrainConfig) -> str:
    """The ``fer-agent train`` command line that reproduces a checkpoint's configuration."""
    defaults = TrainConfig(data=config.data)
    words = ["fer-agent", "train", "--data", config.data]
    for name, value in vars(config).items():
        if name in ("data", "limit", "device") or value == getattr(defaults, name):
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, list):
            words += [flag, ",".join(str(v) for v in value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def dataset_checksums(config: TrainConfig) -> dict[str, str]:
    data = Path(config.data)
    files = sorted(data.glob("*.csv*")) if data.is_dir() else [data]
    if config.ferplus:
        files.append(Path(config.ferplus))
    return {f.name: sha256_of(f) for f in files if f.is_file()}


def probability_graph(model: torch.nn.Module, version: str) -> onnx.ModelProto:
    """``model`` with its softmax as an ONNX graph of the fer-agent contract: raw grey 0..255 in (any batch size),
    probabilities in label order out, the labels and version in its metadata."""
    example = torch.rand(2, 1, FACE_SIZE, FACE_SIZE) * 255
    # The exporter warns about torchvision operators (not installed, not used) and torch-internal deprecations.
    registration_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    previous_level = registration_log.level
    registration_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(
                ProbabilityHead(model).eval(), (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes={INPUT_NAME: {0: torch.export.Dim("batch")}}, dynamo=True, verbose=False,
            )
    finally:
        registration_log.setLevel(previous_level)
    if program is None:
        raise RuntimeError("torch.onnx.export returned no ONNX program")
    proto = program.model_proto
    metadata = {
        LABELS_KEY: ",".join(EMOTIONS),
        VERSION_KEY: version,
        "input_size": str(FACE_SIZE),
        "input_channels": "grey",
        "input_range": "raw grey pixel values 0..255 as float32; normalisation is inside the graph",
        "output": "softmax probabilities over the labels, in label order",
    }
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    return proto


def export_onnx(checkpoint_path: str | Path, onnx_path: str | Path, version: str) -> dict:
    """Write the ONNX model and its card (``<name>.json``); return the card."""
    checkpoint = load_checkpoint(checkpoint_path)
    model, config = model_from_checkpoint(checkpoint)
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    proto = probability_graph(model, version)
    onnx.save(proto, onnx_path)
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    history = checkpoint["history"]
    best = max(history, key=lambda record: record["val_accuracy"])
    card = {
        "name": "fer-agent emotion CNN",
        "version": version,
        "labels": list(EMOTIONS),
        "input": {"name": INPUT_NAME, "shape": ["N", 1, FACE_SIZE, FACE_SIZE], "dtype": "float32",
                  "channels": "grey", "range": "0..255, raw pixel values", "normalisation": "inside the graph"},
        "output": {"name": OUTPUT_NAME, "shape": ["N", len(EMOTIONS)], "dtype": "float32",
                   "meaning": "softmax probabilities in label order"},
        "metadata_props": metadata,
        "architecture": {"kind": "residual CNN", **model.config},
        "parameters": count_parameters(model),
        "file_size_bytes": onnx_path.stat().st_size,
        "sha256": sha256_of(onnx_path),
        "training": {
            "command": training_command(config),
            "config": {k: v for k, v in vars(config).items() if k not in ("out_dir", "limit")},
            "epochs_run": len(history),
            "selected_epoch": best["epoch"],
            "selected_on": checkpoint["selected_on"],
            "public_test_accuracy": best["val_accuracy"],
            "wall_time_seconds": round(sum(r["seconds"] for r in history)),
        },
        "dataset_sha256": dataset_checksums(config),
        "metrics": {},
        "date": dt.date.today().isoformat(),
    }
    write_card(card, onnx_path.with_suffix(".json"))
    log.info("wrote %s and its card", onnx_path)
    return card
