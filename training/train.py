"""Training: seeded, resumable, with a rich progress bar; selects the checkpoint on PublicTest only."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from fer_agent.checksum import sha256_of
from fer_agent.errors import DatasetError
from fer_agent.labels import EMOTIONS
from fer_agent.training.augment import Augmentation, WebcamDegradation
from fer_agent.training.config import TrainConfig
from fer_agent.training.data import FaceDataset, load_dataset
from fer_agent.training.distill import ensemble_probabilities
from fer_agent.training.model import EmotionNet

log = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_accuracy: float
    seconds: float


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def training_targets(dataset: FaceDataset, targets: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices of usable faces, target distributions [N, 7]) for the chosen target kind."""
    if targets == "ferplus":
        if dataset.votes is None:
            raise DatasetError(f"{dataset.source}: --targets ferplus needs the FER+ votes file (fer2013new.csv)")
        soft = dataset.soft_labels()
        keep = np.flatnonzero(soft.sum(axis=1) > 0)
        return keep, soft[keep]
    keep = np.arange(len(dataset))
    return keep, np.eye(len(EMOTIONS), dtype=np.float32)[dataset.labels]


def validation_labels(dataset: FaceDataset) -> np.ndarray:
    """Labels to select checkpoints by: the FER+ majority where FER+ is attached, else the FER-2013 labels."""
    return dataset.majority_labels() if dataset.votes is not None else dataset.labels


def class_weights(targets: np.ndarray, scheme: str) -> np.ndarray:
    frequency = targets.mean(axis=0) + 1e-6
    if scheme == "none":
        weights = np.ones_like(frequency)
    elif scheme == "sqrt":
        weights = frequency ** -0.5
    else:
        weights = 1.0 / frequency
    weights = weights / (targets @ weights).mean()
    return weights.astype(np.float32)


@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, pixels: np.ndarray, device: torch.device,
                          batch_size: int = 512) -> np.ndarray:
    model.eval()
    outputs = []
    for start in range(0, len(pixels), batch_size):
        batch = torch.from_numpy(pixels[start:start + batch_size]).float().unsqueeze(1).to(device)
        outputs.append(torch.softmax(model(batch), dim=1).cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, len(EMOTIONS)), dtype=np.float32)


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    counted = labels >= 0
    if not counted.any():
        return float("nan")
    return float((probabilities[counted].argmax(axis=1) == labels[counted]).mean())


def build_model(config: TrainConfig) -> EmotionNet:
    return EmotionNet(width=config.width, blocks_per_stage=tuple(config.blocks), dropout=config.dropout)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: checkpoint not found")
    try:
        # weights_only: a file named as a teacher is data, never code to run.
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many kinds for a file that is not a checkpoint; the first line says why
        lines = str(error).strip().splitlines()
        raise DatasetError(f"{path}: not a training checkpoint ({lines[0] if lines else type(error).__name__})") \
            from error
    if not isinstance(checkpoint, dict) or not {"config", "model"} <= checkpoint.keys():
        raise DatasetError(f"{path}: not a checkpoint of fer-agent train (it holds no config and model)")
    return checkpoint


def model_from_checkpoint(checkpoint: dict) -> tuple[EmotionNet, TrainConfig]:
    try:
        config = TrainConfig(**checkpoint["config"])
        model = build_model(config)
        model.load_state_dict(checkpoint["model"])
    except (TypeError, ValueError, KeyError, RuntimeError) as error:
        raise DatasetError(f"not a usable checkpoint of fer-agent train: {error}") from error
    model.eval()
    return model, config


def train(config: TrainConfig, resume: bool = False, console: Console | None = None,
          on_epoch_end: Callable[[EpochRecord], None] | None = None) -> list[EpochRecord]:
    """Train (or resume) a model; checkpoints go to ``config.out_dir`` (last.pt each epoch, best.pt on PublicTest).

    ``on_epoch_end`` is called with each epoch's record after its checkpoint is written.
    """
    console = console or Console(stderr=True)
    out_dir = Path(config.out_dir)
    written = {(out_dir / name).resolve() for name in (LAST_CHECKPOINT, BEST_CHECKPOINT)}
    for teacher in config.teachers:
        if Path(teacher).resolve() in written:
            raise DatasetError(f"{teacher}: a teacher cannot be a checkpoint that this run overwrites (--out-dir "
                               f"{out_dir}); copy it elsewhere or give another --out-dir")
    out_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(config.device)
    seed_everything(config.seed)

    dataset = load_dataset(config.data, ferplus=config.ferplus)
    train_set, val_set = dataset.split("Training"), dataset.split("PublicTest")
    if config.limit is not None:
        train_set = train_set.subset(np.arange(min(config.limit, len(train_set))))
        val_set = val_set.subset(np.arange(min(config.limit, len(val_set))))
    keep, targets = training_targets(train_set, config.targets)
    if len(train_set) - len(keep):
        console.print(f"skipped {len(train_set) - len(keep)} training faces without a usable target")
    if len(keep) == 0 or len(val_set) == 0:
        raise DatasetError(f"{dataset.source}: needs Training and PublicTest rows, found {len(keep)} and "
                           f"{len(val_set)}")
    # The faces and targets live on the training device, where the augmentation runs too.
    pixels = torch.from_numpy(train_set.pixels[keep]).unsqueeze(1).to(device)
    hard_labels = torch.from_numpy(targets.argmax(axis=1)).to(device)
    weights = torch.from_numpy(class_weights(targets, config.class_weighting)).to(device)
    if config.teachers:
        console.print(f"distilling from {len(config.teachers)} teacher(s), weight {config.distill}")
        soft = ensemble_probabilities(config.teachers, train_set.pixels[keep], threads=torch.get_num_threads(),
                                      device=str(device), console=console)
        targets = (1 - config.distill) * targets + config.distill * soft
    target_tensor = torch.from_numpy(targets.astype(np.float32)).to(device)
    teacher_sha256 = [sha256_of(Path(teacher)) for teacher in config.teachers]
    val_labels = validation_labels(val_set)
    selected_on = f"PublicTest {'FER+ majority-vote' if val_set.votes is not None else 'FER-2013-label'} accuracy"

    # On a GPU, cuDNN picks the fastest convolution for the batch shape.
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = build_model(config).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                                weight_decay=config.weight_decay)
    steps_per_epoch = (len(keep) + config.batch_size - 1) // config.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                                    total_steps=config.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    augment = Augmentation()
    degrade = WebcamDegradation() if config.augment == "webcam" else None
    history: list[EpochRecord] = []
    best_accuracy = -1.0
    start_epoch = 0

    last_path = out_dir / LAST_CHECKPOINT
    if resume:
        if not last_path.is_file():
            raise DatasetError(f"{last_path}: nothing to resume from")
        state = load_checkpoint(last_path)
        started_with = {**asdict(TrainConfig(data=config.data)), **state["config"]}
        if started_with != asdict(config):
            differences = ", ".join(f"--{key.replace('_', '-')} {started_with[key]!r} (given {value!r})"
                                    for key, value in asdict(config).items() if started_with[key] != value)
            raise DatasetError(f"{last_path}: cannot resume with other options than the run was started with: "
                               f"{differences}; give the same options, or another --out-dir for a new run")
        if state.get("teacher_sha256", []) != teacher_sha256:
            raise DatasetError(f"{last_path}: cannot resume: a teacher model file changed since the run started; "
                               f"give the same teacher files, or another --out-dir for a new run")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history = [EpochRecord(**record) for record in state["history"]]
        best_accuracy = state["best_accuracy"]
        start_epoch = state["epoch"]
        console.print(f"resuming after epoch {start_epoch} from {last_path}")

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("training", total=config.epochs * steps_per_epoch,
                                 completed=start_epoch * steps_per_epoch, stats="")
        for epoch in range(start_epoch, config.epochs):
            started = time.perf_counter()
            model.train()
            order = torch.randperm(len(keep), generator=generator)
            loss_sum, correct, seen = 0.0, 0, 0
            for step in range(steps_per_epoch):
                index = order[step * config.batch_size:(step + 1) * config.batch_size].to(device)
                batch = augment(pixels[index].float(), generator)
                if degrade is not None:
                    batch = degrade(batch, generator)
                target = target_tensor[index]
                logits = model(batch)
                if config.label_smoothing:
                    target = target * (1 - config.label_smoothing) + config.label_smoothing / len(EMOTIONS)
                per_face = -(target * F.log_softmax(logits, dim=1)).sum(dim=1)
                loss = (per_face * (target @ weights)).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.item() * len(index)
                correct += int((logits.argmax(dim=1) == hard_labels[index]).sum())
                seen += len(index)
                progress.update(task, advance=1, description=f"epoch {epoch + 1}/{config.epochs}",
                                stats=f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f}")
            val_accuracy = accuracy(predict_probabilities(model, val_set.pixels, device), val_labels)
            record = EpochRecord(epoch + 1, loss_sum / seen, correct / seen, val_accuracy,
                                 time.perf_counter() - started)
            history.append(record)
            progress.console.print(
                f"epoch {record.epoch}: loss {record.train_loss:.4f}  train acc {record.train_accuracy:.4f}  "
                f"PublicTest acc {record.val_accuracy:.4f}  ({record.seconds:.0f} s)"
            )
            state = {
                "config": asdict(config), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(), "history": [asdict(r) for r in history],
                "best_accuracy": max(best_accuracy, val_accuracy), "epoch": epoch + 1,
                "selected_on": selected_on, "teacher_sha256": teacher_sha256,
            }
            if val_accuracy > best_accuracy:
                best_accuracy = val_accuracy
                _save_atomically(state, out_dir / BEST_CHECKPOINT)
            _save_atomically(state, last_path)
            if on_epoch_end is not None:
                on_epoch_end(record)
    return history


def _save_atomically(state: dict, path: Path) -> None:
    """Write to a temporary file and rename, so that a crash never leaves a half-written checkpoint."""
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    temporary.replace(path)
