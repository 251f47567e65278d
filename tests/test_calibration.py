"""Calibration: the expected calibration error on known cases, the temperature fit recovering a known temperature,
the temperature folded into the real shipped ONNX model (onnxruntime on real FER-2013 faces), and `fer-agent
calibrate` end to end with the card's ECE the one `evaluate` measures."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from fer_agent.training.calibration import fit_temperature, fold_temperature, reliability, with_temperature
from fer_agent.training.data import load_dataset
from fer_agent.vision.classifier import EmotionClassifier
from tests.conftest import ROOT, SHIPPED_CARD, SHIPPED_MODEL


def one_hot_confidence(confidence: float, right: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` faces whose top label (class 0) has ``confidence``; the first ``right`` are class 0."""
    rest = (1 - confidence) / 6
    probabilities = np.full((count, 7), rest)
    probabilities[:, 0] = confidence
    truth = np.where(np.arange(count) < right, 0, 1)
    return probabilities, truth


def test_expected_calibration_error_on_known_cases() -> None:
    assert reliability(*one_hot_confidence(0.8, 80, 100)).ece == pytest.approx(0.0, abs=1e-9)
    assert reliability(*one_hot_confidence(0.9, 60, 100)).ece == pytest.approx(0.3)
    first = one_hot_confidence(0.9, 45, 50)
    second = one_hot_confidence(0.5, 10, 50)
    both = reliability(np.concatenate([first[0], second[0]]), np.concatenate([first[1], second[1]]))
    assert both.ece == pytest.approx(0.5 * 0.0 + 0.5 * 0.3)
    assert sum(row["faces"] for row in both.bins) == 100 and len(both.bins) == 15


def test_the_temperature_fit_finds_the_temperature_that_was_taken_away() -> None:
    """Labels drawn from softmax(logits); the model gives softmax(logits * 2.5), overconfident: T = 2.5 undoes it."""
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 1.5, (20000, 7))
    calibrated = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    truth = np.array([rng.choice(7, p=row) for row in calibrated])
    sharp = np.exp(logits * 2.5) / np.exp(logits * 2.5).sum(axis=1, keepdims=True)
    temperature = fit_temperature(sharp, truth)
    assert temperature == pytest.approx(2.5, rel=0.05)
    assert reliability(with_temperature(sharp, temperature), truth).ece < reliability(sharp, truth).ece / 3
    assert (with_temperature(sharp, temperature).argmax(axis=1) == sharp.argmax(axis=1)).all()


def test_the_temperature_folded_into_the_shipped_model_gives_what_it_should(fer_subset: Path,
                                                                            tmp_path: Path) -> None:
    """The real model through onnxruntime on real faces: the folded model's output is softmax(log p / T) of the
    original's within 1e-4, the top labels are the same, and folding again keeps one division by the product."""
    faces = load_dataset(fer_subset).pixels[:200]
    original = EmotionClassifier(SHIPPED_MODEL).predict(faces)
    # The shipped model is calibrated already: its own temperature is in its metadata.
    shipped = float({prop.key: prop.value for prop in onnx.load(str(SHIPPED_MODEL)).metadata_props}["temperature"])
    folded_path = tmp_path / "folded.onnx"
    assert fold_temperature(SHIPPED_MODEL, folded_path, 0.7) == pytest.approx(shipped * 0.7)
    folded = EmotionClassifier(folded_path).predict(faces)
    assert np.abs(folded - with_temperature(original, 0.7)).max() <= 1e-4
    assert (folded.argmax(axis=1) == original.argmax(axis=1)).all()
    again = tmp_path / "again.onnx"
    assert fold_temperature(folded_path, again, 2.0) == pytest.approx(shipped * 1.4)
    model = onnx.load(str(again))
    divisions = [node.name for node in model.graph.node if node.op_type == "Div"]
    assert divisions.count("fer_agent_temperature_division") == 1
    assert float({prop.key: prop.value for prop in model.metadata_props}["temperature"]) == pytest.approx(
        shipped * 1.4, rel=1e-5)
    twice = EmotionClassifier(again).predict(faces)
    assert np.abs(twice - with_temperature(original, 1.4)).max() <= 1e-4


@pytest.mark.e2e
def test_calibrate_then_evaluate_records_the_error_it_measures(fer_subset: Path, tmp_path: Path) -> None:
    model, card = tmp_path / "model.onnx", tmp_path / "model.json"
    shutil.copy(SHIPPED_MODEL, model)
    shutil.copy(SHIPPED_CARD, card)
    output = tmp_path / "calibrated.onnx"
    command = [sys.executable, "-m", "fer_agent"]
    result = subprocess.run([*command, "calibrate", str(model), "--data", str(fer_subset), "-o", str(output)],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "PrivateTest: expected calibration error" in result.stdout
    written = json.loads(output.with_suffix(".json").read_text())
    assert written["calibration"]["fitted_on"] == "PublicTest"
    assert written["metadata_props"]["temperature"] == f"{written['calibration']['temperature']:.6f}"
    assert written["sha256"] != json.loads(card.read_text())["sha256"]
    measured = subprocess.run([*command, "evaluate", "--model", str(output), "--data", str(fer_subset), "--json",
                               "--card", str(output.with_suffix(".json"))],
                              capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert measured.returncode == 0, measured.stderr
    ece = json.loads(measured.stdout)["ece"]
    assert json.loads(output.with_suffix(".json").read_text())["metrics"]["PrivateTest"]["ece"] == ece
    assert ece == pytest.approx(written["calibration"]["ece"]["PrivateTest"]["after"], abs=1e-4)
