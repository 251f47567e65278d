"""The model card (``emotion.json`` beside ``emotion.onnx``): written by export, extended by evaluation."""

from __future__ import annotations

import json
from pathlib import Path

from fer_agent.training.evaluate import Evaluation


def write_card(card: dict, path: Path) -> None:
    path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


def record_evaluation(path: str | Path, evaluation: Evaluation) -> None:
    """Store an evaluation's metrics in the card under ``metrics.<split>``, replacing earlier ones for that split."""
    path = Path(path)
    card = json.loads(path.read_text(encoding="utf-8"))
    card.setdefault("metrics", {})[evaluation.split] = {
        key: value for key, value in evaluation.to_dict().items() if key != "split"
    }
    write_card(card, path)
