"""The model card (``emotion.json`` beside ``emotion.onnx``): written by export, extended by evaluation."""

from __future__ import annotations

import json
from pathlib import Path

from fer_agent.checksum import sha256_of
from fer_agent.paths import model_card_for
from fer_agent.training.calibration import BINS, TEMPERATURE_KEY
from fer_agent.training.evaluate import Evaluation


def write_card(card: dict, path: Path) -> None:
    path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


def record_calibration(model: Path, output: Path, temperature: float, total: float,
                       errors: dict[str, dict[str, float]]) -> Path | None:
    """The calibrated model's card (beside ``output``): ``model``'s card with the new file's size and checksum, its
    temperature in the metadata, and a ``calibration`` section (the temperature fitted, on which split, and the
    expected calibration error of each split before and after). None when ``model`` has no card."""
    source = model_card_for(model)
    if not source.is_file():
        return None
    card = json.loads(source.read_text(encoding="utf-8"))
    card["file_size_bytes"] = output.stat().st_size
    card["sha256"] = sha256_of(output)
    card.setdefault("metadata_props", {})[TEMPERATURE_KEY] = f"{total:.6f}"
    card["calibration"] = {"temperature": round(total, 6), "last_fitted": round(temperature, 6),
                           "fitted_on": "PublicTest", "bins": BINS,
                           "ece": {split: {key: round(value, 4) for key, value in ece.items()}
                                   for split, ece in errors.items()}}
    target = model_card_for(output)
    write_card(card, target)
    return target


def record_evaluation(path: str | Path, evaluation: Evaluation) -> None:
    """Store an evaluation's metrics in the card under ``metrics.<split>``, replacing earlier ones for that split."""
    path = Path(path)
    card = json.loads(path.read_text(encoding="utf-8"))
    card.setdefault("metrics", {})[evaluation.split] = {
        key: value for key, value in evaluation.to_dict().items() if key != "split"
    }
    write_card(card, path)
