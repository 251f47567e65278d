"""The shipped model card (models/emotion.json) agrees with the shipped ONNX model it describes."""

from __future__ import annotations

import hashlib
import json

import onnx

from fer_agent.labels import EMOTIONS
from tests.conftest import SHIPPED_CARD, SHIPPED_MODEL


def test_card_matches_onnx_metadata() -> None:
    card = json.loads(SHIPPED_CARD.read_text())
    model = onnx.load(SHIPPED_MODEL)
    metadata = {p.key: p.value for p in model.metadata_props}
    assert card["metadata_props"] == metadata
    assert card["labels"] == list(EMOTIONS) == metadata["labels"].split(",")
    assert card["version"] == metadata["fer_agent_model_version"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == card["input"]["shape"][1:] == [1, 48, 48]
    assert int(metadata["input_size"]) == card["input"]["shape"][2]
    assert card["file_size_bytes"] == SHIPPED_MODEL.stat().st_size
    assert card["file_size_bytes"] <= 10 * 1024 * 1024


def test_card_holds_the_required_fields() -> None:
    card = json.loads(SHIPPED_CARD.read_text())
    private = card["metrics"]["PrivateTest"]
    for key in ("ferplus_accuracy", "fer2013_accuracy", "macro_f1", "recall", "precision", "confusion"):
        assert key in private, key
    assert set(private["recall"]) == set(EMOTIONS)
    assert card["training"]["command"].startswith("fer-agent train ")
    assert card["dataset_sha256"]["fer2013.csv.gz"] == (
        "215222fa11ea2320224bc13e5a03a8b57003bfcf07de7ce6c6ec534be6335424"
    )
    assert card["date"]
    assert card["sha256"] == hashlib.sha256(SHIPPED_MODEL.read_bytes()).hexdigest()
