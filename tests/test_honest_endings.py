"""Honest endings ("Never damage a user's data"): a model that cannot take a frame's faces in one batch is refused when
it is loaded; an error nobody expected ends the session as `failed` with the error, and is one line on stderr (the
traceback with --debug); a number option that is nan, infinite or out of its range is a usage error, before anything
is written. Real models (the shipped one, and small real ONNX graphs), real screenshots, real processes and SQLite."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from fer_agent.cli import FiniteFloat, main
from fer_agent.errors import ModelError
from fer_agent.labels import EMOTIONS
from fer_agent.vision.classifier import LABELS_KEY, VERSION_KEY, EmotionClassifier
from tests.conftest import ROOT, SHIPPED_MODEL

GALLERIES = ROOT.parent / "shared" / "datasets" / "galleries"
# Two real call screenshots with many faces each (13 and 18), so the first frame sends a batch of several faces.
SHOTS = ("josehermosillaa_grupo.jpg", "gommy15_zoom4.PNG")


def fer_agent(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_agent", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600, check=False)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = tmp_path / "shots"
    folder.mkdir()
    for name in SHOTS:
        if not (GALLERIES / name).is_file():
            pytest.skip(f"the real call screenshots are not at {GALLERIES}")
        shutil.copy(GALLERIES / name, folder / name)
    return folder


def fixed_batch_model(tmp_path: Path) -> Path:
    """The shipped model with its input's and output's first dimension fixed at 1: it runs one face at a time."""
    model = onnx.load(SHIPPED_MODEL)
    for value in (model.graph.input[0], model.graph.output[0]):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = 1
    path = tmp_path / "batch-of-one.onnx"
    onnx.save(model, path)
    return path


def breaks_on_a_batch_model(tmp_path: Path) -> Path:
    """A real emotion model by the contract (one float input [batch, 1, 48, 48], output [batch, 7], the labels and
    version in its metadata) whose graph fails in onnxruntime for more than one face: a side branch reshapes the
    input to one face's [1, 2304]. Its declared and inferred shapes keep the batch dynamic, so no load check sees it."""
    pixels = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 1, 48, 48])
    probabilities = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(EMOTIONS)])
    constants = [numpy_helper.from_array(np.array([-1, 48 * 48], np.int64), "faces"),
                 numpy_helper.from_array(np.array([1, 48 * 48], np.int64), "one_face"),
                 numpy_helper.from_array(np.zeros((48 * 48, len(EMOTIONS)), np.float32), "weights"),
                 numpy_helper.from_array(np.array(0, np.float32), "zero")]
    nodes = [helper.make_node("Reshape", ["pixels", "faces"], ["flat"]),
             helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
             helper.make_node("Reshape", ["pixels", "one_face"], ["first_face"]),
             helper.make_node("ReduceSum", ["first_face"], ["total"], keepdims=0),
             helper.make_node("Mul", ["total", "zero"], ["nothing"]),
             helper.make_node("Add", ["logits", "nothing"], ["shifted"]),
             helper.make_node("Softmax", ["shifted"], ["probabilities"], axis=1)]
    model = helper.make_model(helper.make_graph(nodes, "one_face_at_a_time", [pixels], [probabilities], constants),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in {LABELS_KEY: ",".join(EMOTIONS), VERSION_KEY: "0.0.0-breaks-on-a-batch"}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "breaks-on-a-batch.onnx"
    onnx.save(model, path)
    return path


def session_rows(database: Path) -> list[tuple]:
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT id, status, message FROM sessions ORDER BY id").fetchall()


# Case 4 (a): a fixed batch passed the model check, then crashed at the first frame with two faces.

def test_a_model_with_a_fixed_batch_is_refused_when_loaded(tmp_path: Path) -> None:
    path = fixed_batch_model(tmp_path)
    # The fault is real: onnxruntime runs it on one face and fails on two.
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"pixels": np.zeros((1, 1, 48, 48), np.float32)})[0].shape == (1, 7)
    with pytest.raises(Exception, match="invalid dimensions for input: pixels"):
        session.run(None, {"pixels": np.zeros((2, 1, 48, 48), np.float32)})
    with pytest.raises(ModelError) as refused:
        EmotionClassifier(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: its input batch is fixed at 1")
    assert "re-export the model with a dynamic batch axis" in message and "\n" not in message
    # The shipped model's batch is dynamic.
    assert EmotionClassifier(SHIPPED_MODEL).predict(np.zeros((5, 48, 48), np.uint8)).shape == (5, 7)


def test_start_with_a_fixed_batch_model_is_one_line_and_starts_no_session(detector_env: dict, screenshots: Path,
                                                                          tmp_path: Path) -> None:
    model = fixed_batch_model(tmp_path)
    database = tmp_path / "out" / "class.db"
    result = fer_agent("start", "--source", str(screenshots), "--model", str(model), "--db", str(database),
                       env=detector_env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {model}: its input batch is fixed at 1")
    assert "dynamic batch axis" in result.stderr
    # Refused before a session starts: no session row (the database may be opened first, to see it is free).
    assert not database.exists() or session_rows(database) == []


# Case 4 (b): any unexpected error ends the session as failed, with its message; the CLI says it in one line.

def test_the_broken_model_passes_the_load_check_and_fails_on_two_faces(tmp_path: Path) -> None:
    classifier = EmotionClassifier(breaks_on_a_batch_model(tmp_path))
    assert classifier.contract.version == "0.0.0-breaks-on-a-batch"
    np.testing.assert_allclose(classifier.predict(np.zeros((1, 48, 48), np.uint8)), 1 / 7, rtol=1e-6)
    with pytest.raises(Exception, match="Reshape"):
        classifier.predict(np.zeros((2, 48, 48), np.uint8))


@pytest.mark.e2e
def test_an_unexpected_error_fails_the_session_with_its_message(detector_env: dict, screenshots: Path,
                                                                tmp_path: Path) -> None:
    model = breaks_on_a_batch_model(tmp_path)
    database = tmp_path / "class.db"
    result = fer_agent("start", "--source", str(screenshots), "--model", str(model), "--db", str(database),
                       env=detector_env)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: unexpected ") and "Reshape" in line
    assert f"(the 0 frames before it are kept: session 1 in {database})" in line
    assert line.endswith(": this is a bug; run the same command as `fer-agent --debug start ...` for the traceback "
                         "and report it")
    assert "finished" not in result.stdout
    [(session_id, status, message)] = session_rows(database)
    assert (session_id, status) == (1, "failed")
    assert message.startswith("unexpected ") and "Reshape" in message and "requested shape:{1,2304}" in message
    assert message in line

    # With --debug: the traceback, and the second session is failed too; the first is left as it was.
    debug = fer_agent("--debug", "start", "--source", str(screenshots), "--model", str(model), "--db", str(database),
                      env=detector_env)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "this is a bug" not in debug.stderr
    assert f"the 0 frames before it are kept: session 2 in {database}" in debug.stderr
    assert [(row[0], row[1]) for row in session_rows(database)] == [(1, "failed"), (2, "failed")]
    assert session_rows(database)[0][2] == message


def test_a_usage_error_and_a_library_error_are_not_called_bugs(tmp_path: Path) -> None:
    usage = fer_agent("report", "--interval", "x", "--db", str(tmp_path / "x.db"))
    assert usage.returncode == 2 and "this is a bug" not in usage.stderr
    missing = fer_agent("evaluate", "--model", str(tmp_path / "absent.onnx"), "--data", str(tmp_path))
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: {tmp_path / 'absent.onnx'}: model file not found"


# Case 5: --fps nan crashed and left the session running, --duration nan meant no limit. Every number option is checked.

NONSENSE = ("nan", "inf", "-inf", "NaN", "-nan", "infinity")
CASES = [
    ("start", "--fps", ("-1", "0", "0.00001", "1e-320")),
    ("start", "--duration", ("-5", "0", "nanm", "infh", "1e400", "1e306h")),
    ("start", "--no-face-minutes", ("-1", "0")),
    ("analyze", "--fps", ("-1", "0")),
    ("check", "--fps", ("-1", "0")),
    ("report", "--interval", ("-60", "0", "0.5")),
    ("export", "--interval", ("-60", "0")),
    ("purge", "--older-than", ("-1", "1e9")),
    ("train", "--lr", ("-0.1", "0")),
    ("train", "--weight-decay", ("-0.0005",)),
    ("train", "--label-smoothing", ("-0.1", "1.5")),
    ("train", "--dropout", ("-0.1", "2")),
    ("train", "--distill", ("-0.1", "1.5")),
    ("batch", "--chunk", ("0", "-1")),
]


def command_line(command: str, out: Path, inputs: Path) -> list[str]:
    """The command with every other argument valid, and everything it could write under ``out``."""
    return {
        "start": ["start", "--source", str(inputs), "--db", str(out / "class.db")],
        "analyze": ["analyze", str(inputs)],
        "check": ["check", "--source", str(inputs), "--save", str(out / "check.png")],
        "report": ["report", "-o", str(out / "report.html"), "--db", str(out / "class.db")],
        "export": ["export", "-o", str(out / "export.json"), "--db", str(out / "class.db")],
        "purge": ["purge", "--yes", "--db", str(out / "class.db")],
        "train": ["train", "--data", str(inputs), "--out-dir", str(out / "run")],
        "batch": ["batch", str(inputs), "--db", str(out / "class.db")],
    }[command]


@pytest.mark.parametrize(("command", "option", "wrong"), CASES, ids=[f"{c}{o}" for c, o, _ in CASES])
def test_every_number_option_refuses_nan_infinity_and_nonsense(command: str, option: str, wrong: tuple,
                                                               tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    out = tmp_path / "out"
    runner = CliRunner()
    for value in NONSENSE + wrong:
        result = runner.invoke(main, [*command_line(command, out, inputs), option, value])
        assert result.exit_code == 2, (value, result.output)
        assert f"Invalid value for '{option}'" in result.stderr, (value, result.stderr)
        assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
        assert not out.exists(), value


def test_start_with_fps_nan_writes_no_database(screenshots: Path, tmp_path: Path) -> None:
    """As a real process: usage error, exit code 2, and no database (nor its folder) made."""
    database = tmp_path / "out" / "class.db"
    for option, value in (("--fps", "nan"), ("--fps", "inf"), ("--duration", "nan"), ("--no-face-minutes", "inf")):
        result = fer_agent("start", "--source", str(screenshots), option, value, "--db", str(database))
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"error: Invalid value for '{option}'") and len(result.stderr.splitlines()) == 1
        assert "Traceback" not in result.stderr
        assert not database.parent.exists()


def test_every_float_option_is_a_finite_float() -> None:
    """Any float option, now or added later, refuses nan and infinities: it must be a FiniteFloat."""
    floats = []
    for name, command in main.commands.items():
        for param in command.params:
            if isinstance(param.type, click.types.FloatParamType):
                assert isinstance(param.type, FiniteFloat), f"{name} {param.opts[0]}"
                floats.append(f"{name} {param.opts[0]}")
    assert {"start --fps", "analyze --fps", "check --fps", "start --no-face-minutes", "report --interval",
            "export --interval", "purge --older-than", "train --lr", "train --weight-decay", "train --label-smoothing",
            "train --dropout"} <= set(floats)


def test_a_finite_float_keeps_what_is_in_range(tmp_path: Path) -> None:
    fps = FiniteFloat(min=0.0001)
    assert fps.convert("2.5", None, None) == 2.5 and fps.convert("0.0001", None, None) == 0.0001
    assert fps.convert("1e300", None, None) == 1e300 and fps.convert(3, None, None) == 3.0
    for text in ("nan", "inf", "-inf", "0", "x"):
        with pytest.raises(click.BadParameter):
            fps.convert(text, None, None)
    # Values at the ends of the ranges pass the parser: what stops these is the missing source or database (exit 1).
    runner = CliRunner()
    for args in (["start", "--source", str(tmp_path / "absent"), "--fps", "0.0001", "--duration", "1.5h",
                  "--no-face-minutes", "0.1", "--db", str(tmp_path / "x.db")],
                 ["purge", "--older-than", "36500", "--db", str(tmp_path / "absent.db")],
                 ["report", "--interval", "1", "--db", str(tmp_path / "absent.db")]):
        result = runner.invoke(main, args)
        assert result.exit_code == 1 and "Invalid value" not in result.stderr, (args, result.output)
