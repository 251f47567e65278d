"""Training on real FER-2013 faces: a short run lowers the loss; interrupt and resume gives the same model; the ONNX
export matches PyTorch and carries the contract."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from fer_agent.errors import DatasetError
from fer_agent.labels import EMOTIONS
from fer_agent.paths import default_emotion_model
from fer_agent.training.data import load_dataset
from fer_agent.training.distill import ensemble_probabilities
from fer_agent.training.export import export_onnx
from fer_agent.training.model import ProbabilityHead
from fer_agent.training.train import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    TrainConfig,
    accuracy,
    build_model,
    class_weights,
    load_checkpoint,
    model_from_checkpoint,
    predict_probabilities,
    seed_everything,
    train,
    validation_labels,
)
from fer_agent.vision.classifier import EmotionClassifier


def quick_config(data: Path, out_dir: Path, **overrides) -> TrainConfig:
    options = dict(data=str(data), out_dir=str(out_dir), epochs=1, batch_size=16, lr=0.05, limit=200)
    options.update(overrides)
    return TrainConfig(**options)


def student_probabilities(out_dir: Path, pixels: np.ndarray) -> np.ndarray:
    model, _ = model_from_checkpoint(load_checkpoint(out_dir / LAST_CHECKPOINT))
    with torch.no_grad():
        return ProbabilityHead(model).eval()(torch.from_numpy(pixels).float().unsqueeze(1)).numpy()


def mean_loss(model: torch.nn.Module, pixels: np.ndarray, targets: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(pixels).float().unsqueeze(1))
        return float(-(torch.from_numpy(targets) * F.log_softmax(logits, dim=1)).sum(dim=1).mean())


@pytest.fixture(scope="module")
def trained(fer_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainConfig:
    config = quick_config(fer_subset, tmp_path_factory.mktemp("run"), epochs=3)
    train(config)
    return config


@pytest.mark.e2e
def test_short_run_lowers_the_loss(fer_subset: Path, trained: TrainConfig) -> None:
    faces = load_dataset(fer_subset).split("Training").subset(np.arange(200))
    targets = faces.soft_labels()
    seed_everything(trained.seed)
    before = mean_loss(build_model(trained), faces.pixels, targets)
    model, _ = model_from_checkpoint(load_checkpoint(Path(trained.out_dir) / LAST_CHECKPOINT))
    after = mean_loss(model, faces.pixels, targets)
    assert after < before - 0.05, (before, after)


def test_class_weighting_follows_the_class_shares() -> None:
    """--class-weighting: 80 happy, 16 sad and 4 disgust faces; a face's loss weight is 1 on average in every scheme,
    and a disgust face weighs sqrt(20) (sqrt) or 20 (inverse) times a happy one, a sad face sqrt(5) or 5."""
    labels = np.array([EMOTIONS.index("happy")] * 80 + [EMOTIONS.index("sad")] * 16 + [EMOTIONS.index("disgust")] * 4)
    targets = np.eye(len(EMOTIONS), dtype=np.float32)[labels]
    happy, sad, disgust = (EMOTIONS.index(name) for name in ("happy", "sad", "disgust"))
    for scheme, power in (("none", 0.0), ("sqrt", 0.5), ("inverse", 1.0)):
        weights = class_weights(targets, scheme)
        assert (targets @ weights).mean() == pytest.approx(1.0, rel=1e-5), scheme
        assert weights[disgust] / weights[happy] == pytest.approx((80 / 4) ** power, rel=1e-4), scheme
        assert weights[sad] / weights[happy] == pytest.approx((80 / 16) ** power, rel=1e-4), scheme


@pytest.mark.e2e
def test_the_best_checkpoint_is_the_epoch_best_on_publictest(fer_subset: Path, trained: TrainConfig) -> None:
    """best.pt holds the weights of the epoch with the highest PublicTest accuracy (the first, on a tie), and those
    weights read PublicTest as that epoch recorded."""
    last = load_checkpoint(Path(trained.out_dir) / LAST_CHECKPOINT)
    best = load_checkpoint(Path(trained.out_dir) / BEST_CHECKPOINT)
    recorded = [record["val_accuracy"] for record in last["history"]]
    assert len(recorded) == trained.epochs and best["epoch"] == 1 + int(np.argmax(recorded))
    public = load_dataset(fer_subset).split("PublicTest")
    public = public.subset(np.arange(min(trained.limit or len(public), len(public))))
    model, _ = model_from_checkpoint(best)
    measured = accuracy(predict_probabilities(model, public.pixels, torch.device("cpu")), validation_labels(public))
    assert measured == pytest.approx(recorded[best["epoch"] - 1], abs=1e-9)


def test_one_epoch_run_writes_checkpoints(fer_subset: Path, tmp_path: Path) -> None:
    history = train(quick_config(fer_subset, tmp_path))
    assert len(history) == 1 and np.isfinite(history[0].train_loss)
    assert 0 <= history[0].val_accuracy <= 1
    for name in (LAST_CHECKPOINT, BEST_CHECKPOINT):
        state = load_checkpoint(tmp_path / name)
        assert state["epoch"] == 1 and state["selected_on"] == "PublicTest FER+ majority-vote accuracy"


@pytest.mark.e2e
def test_interrupted_run_resumes_to_the_same_model(fer_subset: Path, tmp_path: Path) -> None:
    straight = quick_config(fer_subset, tmp_path / "straight", epochs=2)
    train(straight)

    interrupted = quick_config(fer_subset, tmp_path / "interrupted", epochs=2)

    def stop(_record) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(interrupted, on_epoch_end=stop)
    assert load_checkpoint(tmp_path / "interrupted" / LAST_CHECKPOINT)["epoch"] == 1
    history = train(interrupted, resume=True)
    assert [record.epoch for record in history] == [1, 2]

    expected = load_checkpoint(tmp_path / "straight" / LAST_CHECKPOINT)["model"]
    resumed = load_checkpoint(tmp_path / "interrupted" / LAST_CHECKPOINT)["model"]
    for name, tensor in expected.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=0, atol=1e-6, msg=name)


@pytest.mark.e2e
def test_resume_needs_a_checkpoint_and_the_same_config(fer_subset: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nothing to resume from"):
        train(quick_config(fer_subset, tmp_path), resume=True)
    train(quick_config(fer_subset, tmp_path))
    # One clear line (no traceback): which options differ, and what to do.
    with pytest.raises(DatasetError, match=r"cannot resume with other options than the run was started with: "
                                           r"--lr 0\.05 \(given 0\.01\); give the same options"):
        train(quick_config(fer_subset, tmp_path, lr=0.01), resume=True)


@pytest.mark.e2e
def test_fer2013_targets_without_ferplus(fer_subset: Path, tmp_path: Path) -> None:
    csv_only = tmp_path / "fer2013.csv"
    csv_only.write_bytes((fer_subset / "fer2013.csv").read_bytes())
    with pytest.raises(DatasetError, match="needs the FER\\+ votes file"):
        train(quick_config(csv_only, tmp_path / "a"))
    train(quick_config(csv_only, tmp_path / "b", targets="fer2013"))
    assert load_checkpoint(tmp_path / "b" / BEST_CHECKPOINT)["selected_on"] == "PublicTest FER-2013-label accuracy"


@pytest.mark.e2e
def test_onnx_export_matches_pytorch(fer_subset: Path, trained: TrainConfig, tmp_path: Path) -> None:
    onnx_path = tmp_path / "emotion.onnx"
    card = export_onnx(Path(trained.out_dir) / BEST_CHECKPOINT, onnx_path, version="9.9.9-test")
    faces = load_dataset(fer_subset).pixels[:256]
    assert len(faces) == 256

    model, _ = model_from_checkpoint(load_checkpoint(Path(trained.out_dir) / BEST_CHECKPOINT))
    with torch.no_grad():
        expected = ProbabilityHead(model).eval()(torch.from_numpy(faces).float().unsqueeze(1)).numpy()
    classifier = EmotionClassifier(onnx_path)
    actual = classifier.predict(faces)
    assert actual.shape == (256, 7) and actual.dtype == np.float32
    assert np.abs(actual - expected).max() <= 1e-4
    np.testing.assert_allclose(actual.sum(axis=1), 1, atol=1e-5)
    # Batch size is dynamic, and uint8 faces work as they are.
    assert classifier.predict(faces[:1]).shape == (1, 7)
    assert classifier.predict(faces[:49].astype(np.uint8)[:, None]).shape == (49, 7)

    metadata = {p.key: p.value for p in onnx.load(onnx_path).metadata_props}
    assert metadata["labels"] == ",".join(EMOTIONS)
    assert metadata["fer_agent_model_version"] == "9.9.9-test"
    assert classifier.contract.version == "9.9.9-test" and classifier.input_size == 48
    written = json.loads(onnx_path.with_suffix(".json").read_text())
    assert written == card
    assert written["metadata_props"] == metadata
    assert written["file_size_bytes"] == onnx_path.stat().st_size
    assert written["sha256"] == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert written["parameters"] == sum(p.numel() for p in model.parameters())
    assert written["training"]["command"].startswith(f"fer-agent train --data {trained.data}")


@pytest.fixture(scope="module")
def weak_teacher(trained: TrainConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A teacher that disagrees with the FER+ votes: the 3-epoch model of 200 faces, exported to ONNX."""
    path = tmp_path_factory.mktemp("teacher") / "teacher.onnx"
    export_onnx(Path(trained.out_dir) / BEST_CHECKPOINT, path, version="9.9.9-test")
    return path


@pytest.mark.e2e
def test_ensemble_is_the_mean_over_models_and_mirror_images(fer_subset: Path, weak_teacher: Path) -> None:
    faces = load_dataset(fer_subset).pixels[:64]
    models = [default_emotion_model(), weak_teacher]
    views = [faces, faces[:, :, ::-1].copy()]
    expected = np.mean([EmotionClassifier(m).predict(v) for m in models for v in views], axis=0)
    np.testing.assert_allclose(ensemble_probabilities(models, faces), expected, atol=1e-6)
    np.testing.assert_allclose(ensemble_probabilities(models[:1], faces, mirror=False),
                               EmotionClassifier(models[0]).predict(faces), atol=1e-6)


@pytest.mark.e2e
def test_a_checkpoint_teaches_what_its_onnx_export_teaches(trained: TrainConfig, fer_subset: Path,
                                                           weak_teacher: Path) -> None:
    faces = load_dataset(fer_subset).pixels[:64]
    checkpoint = Path(trained.out_dir) / BEST_CHECKPOINT
    random_state = torch.get_rng_state()
    np.testing.assert_allclose(ensemble_probabilities([checkpoint], faces),
                               ensemble_probabilities([weak_teacher], faces), atol=1e-4)
    assert torch.equal(torch.get_rng_state(), random_state), "a checkpoint teacher moved the student's random stream"


@pytest.mark.e2e
def test_a_student_trains_from_a_checkpoint_teacher_but_not_from_one_it_overwrites(trained: TrainConfig,
                                                                                  fer_subset: Path,
                                                                                  tmp_path: Path) -> None:
    teacher = str(Path(trained.out_dir) / BEST_CHECKPOINT)
    history = train(quick_config(fer_subset, tmp_path / "student", teachers=[teacher], distill=1.0))
    assert len(history) == 1 and (tmp_path / "student" / BEST_CHECKPOINT).is_file()
    before = Path(teacher).read_bytes()
    with pytest.raises(DatasetError, match="a teacher cannot be a checkpoint that this run overwrites"):
        train(quick_config(fer_subset, trained.out_dir, teachers=[teacher]))
    assert Path(teacher).read_bytes() == before


class NotOurs:
    """A class of another program, pickled into a .pt file."""


@pytest.mark.parametrize("content, reason", [
    (b"plain text, not a pickle", "not a training checkpoint"),
    (b"", "not a training checkpoint"),
    ({"epoch": 3}, "not a checkpoint of fer-agent train"),
    (NotOurs(), "not a training checkpoint"),
    ({"config": {"data": "x", "width": "wide"}, "model": {}}, "not a usable checkpoint of fer-agent train"),
])
def test_a_teacher_that_is_no_checkpoint_is_refused_with_its_name(content, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "notes.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(DatasetError, match=f"notes.pt: {reason}"):
        ensemble_probabilities([path], np.zeros((1, 48, 48), dtype=np.uint8))


@pytest.mark.e2e
def test_distilled_student_moves_towards_its_teacher(fer_subset: Path, weak_teacher: Path, tmp_path: Path) -> None:
    faces = load_dataset(fer_subset).split("Training").pixels[:200]
    teacher = ensemble_probabilities([weak_teacher], faces)

    def divergence(out_dir: Path) -> float:
        student = student_probabilities(out_dir, faces)
        return float((teacher * (np.log(teacher + 1e-9) - np.log(student + 1e-9))).sum(axis=1).mean())

    plain = quick_config(fer_subset, tmp_path / "plain", epochs=3, augment="webcam")
    distilled = quick_config(fer_subset, tmp_path / "distilled", epochs=3, augment="webcam",
                             teachers=[str(weak_teacher)], distill=1.0)
    train(plain)
    train(distilled)
    assert divergence(tmp_path / "distilled") < 0.7 * divergence(tmp_path / "plain")


@pytest.mark.e2e
def test_resume_refuses_a_changed_teacher(fer_subset: Path, weak_teacher: Path, tmp_path: Path) -> None:
    teacher = tmp_path / "teacher.onnx"
    teacher.write_bytes(weak_teacher.read_bytes())
    config = quick_config(fer_subset, tmp_path / "run", epochs=2, teachers=[str(teacher)])

    def stop(_record) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, on_epoch_end=stop)
    teacher.write_bytes(default_emotion_model().read_bytes())
    with pytest.raises(DatasetError, match="a teacher model file changed since the run started"):
        train(config, resume=True)
