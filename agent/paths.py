"""Where fer-agent finds the files it ships."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def default_emotion_model() -> Path:
    """The shipped emotion model: inside the installed package (wheel), else in the source checkout's models/."""
    for candidate in (_PACKAGE_DIR / "models" / "emotion.onnx", _PACKAGE_DIR.parent / "models" / "emotion.onnx"):
        if candidate.is_file():
            return candidate
    return _PACKAGE_DIR.parent / "models" / "emotion.onnx"


def model_card_for(model_path: Path) -> Path:
    """The model card sits beside its model: emotion.onnx -> emotion.json."""
    return model_path.with_suffix(".json")


def model_test_accuracy(model_path: Path) -> float | None:
    """The model's FER+ majority-vote accuracy on PrivateTest, from its card; None without a card or that number."""
    import json

    card = model_card_for(model_path)
    try:
        metrics = json.loads(card.read_text(encoding="utf-8"))["metrics"]["PrivateTest"]
        return float(metrics["ferplus_accuracy"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
