"""The fer-agent command line, run as a real process: help on every command, train/export/evaluate end to end,
clear one-line errors, and evaluate agreeing with the shipped model card."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.conftest import ROOT, SHIPPED_CARD, SHIPPED_MODEL

COMMANDS = ["check", "train", "evaluate", "export-model", "start", "analyze", "windows", "sessions", "report", "export",
            "purge", "salvage"]


def fer_agent(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "fer_agent", *args], capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"fer-agent {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def in_process(*args: str) -> str:
    """The command's output, run in this process by click's runner (as `python -m fer_agent` would name itself)."""
    from click.testing import CliRunner

    from fer_agent.cli import main

    result = CliRunner().invoke(main, list(args), prog_name="python -m fer_agent")
    assert result.exit_code == 0, result.output
    return result.stdout


def test_help_lists_every_command() -> None:
    output = in_process("--help")
    for command in COMMANDS:
        assert command in output
    assert "0.1.0" in in_process("--version")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    output = in_process(command, "--help")
    assert f"Usage: python -m fer_agent {command}" in output
    assert len(output.splitlines()) > 5


@pytest.mark.e2e
def test_help_as_a_real_process() -> None:
    assert "Usage: python -m fer_agent start" in fer_agent("start", "--help").stdout


def test_usage_errors_are_one_line_and_debug_goes_anywhere(tmp_path: Path) -> None:
    """In process (click's runner): a mistyped option, a missing one and an unknown command are one line each (exit
    code 2) that names the command's help; --debug is taken after the command too."""
    from click.testing import CliRunner

    from fer_agent.cli import main
    from fer_agent.errors import StoreError

    runner = CliRunner()
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"")
    # export-model without -o would have overwritten the shipped model: -o is required.
    for args, line in ((["start", "--fsp", "2"], "error: No such option '--fsp'"),
                       (["export-model", str(checkpoint)], "error: Missing option '-o' / '--output'"),
                       (["statr"], "error: No such command 'statr'")):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith(line) and len(result.stderr.splitlines()) == 1, result.stderr
        assert "--help`)" in result.stderr
    missing = str(tmp_path / "none.db")
    plain = runner.invoke(main, ["sessions", "--db", missing])
    assert plain.exit_code == 1 and plain.stderr.startswith("error: ") and "no session database there" in plain.stderr
    for args in (["--debug", "sessions", "--db", missing], ["sessions", "--db", missing, "--debug"]):
        debugged = runner.invoke(main, args)
        assert isinstance(debugged.exception, StoreError), args
    assert "Samples per second of a video's time" in runner.invoke(main, ["analyze", "--help"]).output


@pytest.mark.e2e
def test_train_export_evaluate_end_to_end(fer_subset: Path, tmp_path: Path) -> None:
    onnx_path = tmp_path / "model.onnx"
    trained = fer_agent("train", "--data", str(fer_subset), "--out-dir", str(tmp_path / "run"), "--epochs", "1",
                        "--batch-size", "32", "--limit", "200", "--onnx", str(onnx_path))
    assert "best PublicTest accuracy" in trained.stdout
    assert onnx_path.is_file() and onnx_path.with_suffix(".json").is_file()

    exported = tmp_path / "again.onnx"
    fer_agent("export-model", str(tmp_path / "run" / "best.pt"), "-o", str(exported), "--model-version", "2.0.0")
    assert json.loads(exported.with_suffix(".json").read_text())["version"] == "2.0.0"

    confusion = tmp_path / "confusion.png"
    result = fer_agent("evaluate", "--model", str(exported), "--data", str(fer_subset), "--json",
                       "--confusion", str(confusion), "--card", str(exported.with_suffix(".json")))
    metrics = json.loads(result.stdout)
    assert metrics["split"] == "PrivateTest" and metrics["faces"] == 120
    assert sum(map(sum, metrics["confusion"])) == metrics["reference_faces"]
    assert confusion.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = json.loads(exported.with_suffix(".json").read_text())
    assert card["metrics"]["PrivateTest"]["ferplus_accuracy"] == metrics["ferplus_accuracy"]

    table = fer_agent("evaluate", "--model", str(exported), "--data", str(fer_subset), "--split", "PublicTest").stdout
    assert "FER+ majority-vote accuracy" in table and "neutral" in table


@pytest.mark.e2e
def test_errors_are_one_clear_line(tmp_path: Path, fer_subset: Path) -> None:
    result = fer_agent("evaluate", "--model", str(tmp_path / "absent.onnx"), "--data", str(fer_subset), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'absent.onnx'}: model file not found"
    bad = tmp_path / "fer2013.csv"
    bad.write_text("emotion,pixels\n3,1 2 3\n")
    result = fer_agent("train", "--data", str(bad), "--out-dir", str(tmp_path / "run"), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(f"error: {bad}: missing column(s) Usage")
    debug = fer_agent("--debug", "train", "--data", str(bad), "--out-dir", str(tmp_path / "run"), check=False)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    usage = fer_agent("train", "--data", str(bad), "--blocks", "1,x", check=False)
    assert usage.returncode == 2 and "expected comma-separated whole numbers" in usage.stderr


def test_training_without_the_train_extra_says_how_to_get_it(fer_subset: Path, tmp_path: Path) -> None:
    # Run the CLI in an interpreter where importing torch fails, as in a runtime-only install.
    code = "import sys; sys.modules['torch'] = None; from fer_agent.cli import main; main()"
    for args in (["train", "--data", str(fer_subset)], ["export-model", str(fer_subset / "fer2013.csv"),
                                                                 "-o", str(tmp_path / "m.onnx")]):
        result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 1, result.stderr
        assert "needs the training extra" in result.stderr and "pip install 'fer-agent[train]'" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.e2e
def test_evaluate_agrees_with_the_model_card(shared_fer: Path) -> None:
    card = json.loads(SHIPPED_CARD.read_text())
    result = fer_agent("evaluate", "--model", str(SHIPPED_MODEL), "--data", str(shared_fer), "--limit", "500", "--json")
    metrics = json.loads(result.stdout)
    assert metrics["faces"] == 500
    expected = card["metrics"]["PrivateTest"]
    assert abs(metrics["ferplus_accuracy"] - expected["ferplus_accuracy"]) <= 0.03
    assert abs(metrics["fer2013_accuracy"] - expected["fer2013_accuracy"]) <= 0.03


@pytest.mark.e2e
def test_evaluate_images_through_the_runtime_path(test_faces: tuple, detector_model_path: Path,
                                                  tmp_path: Path) -> None:
    """PrivateTest faces, upscaled onto larger images in class folders named with synonyms, go through the
    detector, the crop and the classifier; a blank image is reported as having no face; a contempt folder is
    skipped. The accuracy matches the model's on the same 48x48 faces; the macro-F1 is over the set's own classes
    (it has no disgust)."""
    import cv2
    import numpy as np

    from fer_agent.labels import EMOTIONS
    from fer_agent.vision.classifier import EmotionClassifier

    pixels, labels = test_faces
    chosen = np.flatnonzero((labels >= 0) & (labels != EMOTIONS.index("disgust")))[:150]
    folders = {"angry": "anger", "happy": "happiness", "surprise": "Surprised", "sad": "sadness"}
    rng = np.random.default_rng(0)
    for index in chosen:
        canvas = np.full((240, 320), int(rng.integers(60, 200)), np.uint8)
        canvas[40:184, 88:232] = cv2.resize(pixels[index], (144, 144), interpolation=cv2.INTER_CUBIC)
        folder = tmp_path / "set" / folders.get(EMOTIONS[labels[index]], EMOTIONS[labels[index]])
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:05d}.png"), canvas)
    blank = tmp_path / "set" / "neutral" / "zz-blank.jpg"
    blank.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(blank), np.full((240, 320), 128, np.uint8))
    (tmp_path / "set" / "neutral" / "notes.txt").write_text("not an image")
    (tmp_path / "set" / "contempt").mkdir()
    cv2.imwrite(str(tmp_path / "set" / "contempt" / "a.png"), canvas)
    result = fer_agent("evaluate", "--images", str(tmp_path / "set"), "--detector-model", str(detector_model_path),
                       "--json")
    metrics = json.loads(result.stdout)
    assert metrics["images"] == len(chosen) + 1 and metrics["skipped_folders"] == ["contempt"]
    assert str(blank) in metrics["no_face"] and metrics["faces"] >= 0.95 * len(chosen)
    assert sum(map(sum, metrics["confusion"])) == metrics["faces"] == metrics["images"] - len(metrics["no_face"])
    assert metrics["end_to_end_accuracy"] == pytest.approx(metrics["accuracy"] * metrics["faces"] / metrics["images"])
    direct = EmotionClassifier(SHIPPED_MODEL).predict(pixels[chosen]).argmax(axis=1)
    assert metrics["accuracy"] >= 0.75 and abs(metrics["accuracy"] - (direct == labels[chosen]).mean()) <= 0.08
    present = [name for name in EMOTIONS if name in {EMOTIONS[label] for label in labels[chosen]} | {"neutral"}]
    assert metrics["classes"] == present and "disgust" not in present
    f1 = [2 * p * r / (p + r) if p + r else 0.0
          for p, r in ((metrics["precision"][name], metrics["recall"][name]) for name in present)]
    assert metrics["macro_f1"] == pytest.approx(float(np.mean(f1)))
    table = fer_agent("evaluate", "--images", str(tmp_path / "set"), "--detector-model", str(detector_model_path))
    assert "no face found in" in table.stdout and "skipped folders (not one of our labels): contempt" in table.stdout
    usage = fer_agent("evaluate", check=False)
    assert usage.returncode == 2 and "give one of --data (FER-2013) or --images" in usage.stderr


@pytest.mark.e2e
def test_check_on_a_real_screenshot_and_its_saved_picture(detector_env: dict, tmp_path: Path) -> None:
    from tests.test_finder import GALLERIES

    shot = GALLERIES / "josehermosillaa_grupo.jpg"
    if not shot.is_file():
        pytest.skip(f"the real call screenshots are not at {GALLERIES}")
    picture = tmp_path / "check.png"
    result = subprocess.run([sys.executable, "-m", "fer_agent", "check", "--source", str(shot), "--save", str(picture)],
                            capture_output=True, text=True, env={**detector_env, "COLUMNS": "200"}, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "1366x768 pixels, 13 faces found" in result.stdout and "P13" in result.stdout
    assert "it shows the participants' faces" in result.stdout
    saved = cv2.imread(str(picture))
    assert saved.shape == (768, 1366, 3) and (saved != cv2.imread(str(shot))).any()
    assert result.stderr == ""


@pytest.mark.e2e
def test_nothing_on_the_terminal_and_nothing_in_the_cache_but_ours(detector_env: dict, tmp_path: Path) -> None:
    """A video through `analyze`: no MediaPipe, LiteRT, OpenCV or onnxruntime line on stderr, and onnxruntime
    leaves no telemetry (device id, event queue) in the user's cache."""
    from tests.test_finder import GALLERIES, decoded, still_video

    shot = GALLERIES / "gommy15_zoom4.PNG"
    if not shot.is_file():
        pytest.skip(f"the real call screenshots are not at {GALLERIES}")
    video = still_video(cv2.cvtColor(cv2.imread(str(shot)), cv2.COLOR_BGR2RGB), tmp_path / "call.mp4")
    assert len(decoded(video)) == 4
    home = tmp_path / "home"
    env = {**detector_env, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    result = subprocess.run([sys.executable, "-m", "fer_agent", "analyze", str(video), "--json", "--fps", "2"],
                            capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert [len(json.loads(line)["faces"]) for line in result.stdout.splitlines()] == [18, 18, 18, 18]
    assert not (home / ".cache" / "Microsoft").exists()
