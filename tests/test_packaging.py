"""A regular (non-editable) install adds one import package, fer_agent, carries the shipped model, and its fer-agent
finds and runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.e2e
def test_wheel_install_finds_the_shipped_model(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("fer_agent-*.whl")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    # Exactly one top-level import package: no generic names (agent, training, reports) that other distributions use.
    assert sorted(path.name for path in site.iterdir() if not path.name.endswith(".dist-info")) == ["bin", "fer_agent"]
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = (
        "import numpy, fer_agent; from fer_agent.paths import default_emotion_model; "
        "from fer_agent.vision.classifier import EmotionClassifier; path = default_emotion_model(); "
        "p = EmotionClassifier(path).predict(numpy.zeros((2, 48, 48))); "
        "print(fer_agent.__file__, path, 'x'.join(map(str, p.shape)))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120, check=True)
    package_file, model_path, shape = result.stdout.split()
    assert package_file.startswith(str(site)) and model_path == str(site / "fer_agent" / "models" / "emotion.onnx")
    assert shape == "2x7"
    script = subprocess.run([str(site / "bin" / "fer-agent"), "evaluate", "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=True)
    # click wraps the help text: compare with the whitespace taken out.
    assert str(site / "fer_agent" / "models" / "emotion.onnx") in "".join(script.stdout.split())
