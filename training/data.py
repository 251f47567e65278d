"""Dataset loaders: Kaggle FER-2013 CSV (plain or gzip), FER+ vote files, and folder-per-class image trees.

Every loader returns a :class:`FaceDataset`. Bad data raises :class:`DatasetError` naming the file and the row (or
the image path); rows that are legitimately left out (FER+ rows without a single vote for one of our 7 emotions) are
counted in ``FaceDataset.skipped`` and logged, never dropped silently.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_agent.capture.sources import IMAGE_SUFFIXES
from fer_agent.errors import DatasetError
from fer_agent.labels import EMOTIONS

log = logging.getLogger(__name__)

FACE_SIZE = 48
SPLITS = ("Training", "PublicTest", "PrivateTest")
FER2013_COLUMNS = ("emotion", "pixels", "Usage")
FERPLUS_COLUMNS = (
    "Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
    "unknown", "NF",
)
# FER+ vote columns in our label order (angry, disgust, fear, happy, sad, surprise, neutral).
FERPLUS_TO_OURS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
FERPLUS_NOT_OURS = ("contempt", "unknown", "NF")
# Folder names accepted for each of our labels (case-insensitive), for folder-per-class datasets.
CLASS_SYNONYMS: dict[str, str] = {
    **{name: name for name in EMOTIONS},
    "anger": "angry", "disgusted": "disgust", "disgusting": "disgust", "fearful": "fear", "scared": "fear",
    "afraid": "fear", "happiness": "happy", "joy": "happy", "sadness": "sad", "surprised": "surprise",
    "neutrality": "neutral", "calm": "neutral",
}


@dataclass
class FaceDataset:
    """Grey 48x48 faces with their labels.

    ``labels`` holds the single-annotator FER-2013 label (index into EMOTIONS). ``votes`` holds, when FER+ is
    attached, the 10 FER+ vote counts per face in FERPLUS_COLUMNS order from "neutral" on.
    """

    pixels: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    source: str
    votes: np.ndarray | None = None
    skipped: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        n = len(self.pixels)
        if self.pixels.dtype != np.uint8 or self.pixels.shape[1:] != (FACE_SIZE, FACE_SIZE):
            raise ValueError(
                f"pixels: expected uint8 [N, {FACE_SIZE}, {FACE_SIZE}], got {self.pixels.dtype} {self.pixels.shape}"
            )
        for name in ("labels", "usage"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: expected {n} rows, got {len(getattr(self, name))}")
        if self.votes is not None and self.votes.shape != (n, len(FERPLUS_COLUMNS) - 2):
            raise ValueError(f"votes: expected [{n}, {len(FERPLUS_COLUMNS) - 2}], got {self.votes.shape}")

    def __len__(self) -> int:
        return len(self.pixels)

    def subset(self, index: np.ndarray | slice) -> FaceDataset:
        return FaceDataset(
            pixels=self.pixels[index],
            labels=self.labels[index],
            usage=self.usage[index],
            source=self.source,
            votes=None if self.votes is None else self.votes[index],
            skipped=Counter(self.skipped),
        )

    def split(self, usage: str) -> FaceDataset:
        if usage not in SPLITS:
            raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {usage!r}")
        return self.subset(np.flatnonzero(self.usage == usage))

    def soft_labels(self) -> np.ndarray:
        """FER+ vote distributions over our 7 emotions, float32 [N, 7].

        Votes for contempt, unknown and "not a face" are left out, and so are single votes when the face also has
        a repeated one (Barsoum et al. treat a lone vote as annotator noise). Rows with no vote for any of our 7
        emotions get all zeros: use :meth:`has_soft_label` to leave them out.
        """
        if self.votes is None:
            raise DatasetError(f"{self.source}: no FER+ votes attached (pass the FER+ file fer2013new.csv)")
        ours = self.votes[:, [FERPLUS_COLUMNS.index(c) - 2 for c in FERPLUS_TO_OURS]].astype(np.float32)
        denoised = np.where(ours > 1, ours, 0.0)
        keep_denoised = denoised.sum(axis=1, keepdims=True) > 0
        ours = np.where(keep_denoised, denoised, ours)
        totals = ours.sum(axis=1, keepdims=True)
        return np.divide(ours, totals, out=np.zeros_like(ours), where=totals > 0)

    def has_soft_label(self) -> np.ndarray:
        return self.soft_labels().sum(axis=1) > 0

    def majority_labels(self) -> np.ndarray:
        """The FER+ majority vote per face as an index into EMOTIONS, or -1 where it does not count.

        The rule of the evaluation: the top vote over all 10 FER+ columns; a face whose top vote is contempt,
        unknown or "not a face", or whose top vote is tied between two columns, gets -1.
        """
        if self.votes is None:
            raise DatasetError(f"{self.source}: no FER+ votes attached (pass the FER+ file fer2013new.csv)")
        top = self.votes.max(axis=1, keepdims=True)
        tied = (self.votes == top).sum(axis=1) > 1
        winner = self.votes.argmax(axis=1)
        vote_names = FERPLUS_COLUMNS[2:]
        to_ours = np.array([
            FERPLUS_TO_OURS.index(name) if name in FERPLUS_TO_OURS else -1 for name in vote_names
        ])
        majority = to_ours[winner]
        majority[tied | (top[:, 0] == 0)] = -1
        return majority


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) from a CSV file, checking its header first."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        with _open_text(path) as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise DatasetError(
                    f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(required)}, "
                    f"found {', '.join(header) or 'no header'}"
                )
            for row in reader:
                yield reader.line_num, row
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as error:
        raise DatasetError(f"{path}: cannot read as CSV: {error}") from error


def parse_pixels(text: str, where: str) -> np.ndarray:
    # np.fromstring's text mode parses five times faster than split(); it warns (a ValueError in future numpy
    # releases) where a token is not a number, which we report as bad data.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            values = np.fromstring(text, dtype=np.int64, sep=" ")
        except (DeprecationWarning, ValueError):
            raise DatasetError(f"{where}: pixels must be whole numbers separated by spaces") from None
    if values.size != FACE_SIZE * FACE_SIZE:
        raise DatasetError(f"{where}: expected {FACE_SIZE * FACE_SIZE} pixel values, got {values.size}")
    if values.min() < 0 or values.max() > 255:
        raise DatasetError(f"{where}: pixel values must be 0..255, got {values.min()}..{values.max()}")
    return values.astype(np.uint8).reshape(FACE_SIZE, FACE_SIZE)


def load_fer2013_csv(path: str | Path, limit: int | None = None) -> FaceDataset:
    """Load the Kaggle FER-2013 file (``emotion,pixels,Usage``), plain or gzip-compressed."""
    path = Path(path)
    pixels: list[np.ndarray] = []
    labels: list[int] = []
    usage: list[str] = []
    for line, row in _rows(path, FER2013_COLUMNS):
        if limit is not None and len(pixels) >= limit:
            break
        where = f"{path}, line {line}"
        try:
            label = int(row["emotion"])
        except (TypeError, ValueError):
            label = -1
        if not 0 <= label < len(EMOTIONS):
            raise DatasetError(f"{where}: unknown emotion label {row['emotion']!r}; expected 0..{len(EMOTIONS) - 1}")
        if row["Usage"] not in SPLITS:
            raise DatasetError(f"{where}: unknown Usage {row['Usage']!r}; expected one of {', '.join(SPLITS)}")
        pixels.append(parse_pixels(row["pixels"] or "", where))
        labels.append(label)
        usage.append(row["Usage"])
    if not pixels:
        raise DatasetError(f"{path}: no rows")
    log.info("loaded %d faces from %s", len(pixels), path)
    return FaceDataset(
        pixels=np.stack(pixels), labels=np.array(labels, dtype=np.int64), usage=np.array(usage), source=str(path)
    )


def load_ferplus_votes(path: str | Path, usage: np.ndarray) -> np.ndarray:
    """Load FER+ vote counts for a FER-2013 file whose Usage column is ``usage``, checking the row-by-row alignment."""
    path = Path(path)
    votes: list[list[int]] = []
    vote_columns = FERPLUS_COLUMNS[2:]
    for line, row in _rows(path, FERPLUS_COLUMNS):
        index = len(votes)
        if index >= len(usage):
            break
        where = f"{path}, line {line}"
        if row["Usage"] != usage[index]:
            raise DatasetError(
                f"{where}: FER+ file not aligned with the FER-2013 file: Usage {row['Usage']!r} where the FER-2013 "
                f"row {index + 1} says {str(usage[index])!r}"
            )
        try:
            counts = [int(row[c]) for c in vote_columns]
        except (TypeError, ValueError) as error:
            raise DatasetError(f"{where}: vote counts must be whole numbers: {error}") from error
        if min(counts) < 0:
            raise DatasetError(f"{where}: negative vote count")
        votes.append(counts)
    if len(votes) != len(usage):
        raise DatasetError(
            f"{path}: FER+ file not aligned with the FER-2013 file: {len(votes)} rows where the FER-2013 file has "
            f"{len(usage)}"
        )
    return np.array(votes, dtype=np.int64)


def load_fer(path: str | Path, ferplus: str | Path | None = None, limit: int | None = None) -> FaceDataset:
    """Load FER-2013 from a file or from a folder holding ``fer2013.csv[.gz]`` and, optionally, ``fer2013new.csv``.

    With a folder, a FER+ file beside the FER-2013 file is attached automatically.
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / "fer2013.csv.gz", path / "fer2013.csv"]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise DatasetError(f"{path}: no fer2013.csv or fer2013.csv.gz in this folder")
        if ferplus is None and (path / "fer2013new.csv").is_file():
            ferplus = path / "fer2013new.csv"
        path = found[0]
    dataset = load_fer2013_csv(path, limit=limit)
    if ferplus is not None:
        dataset.votes = load_ferplus_votes(ferplus, dataset.usage)
        no_vote = int((~dataset.has_soft_label()).sum())
        if no_vote:
            dataset.skipped["no FER+ vote for any of the 7 emotions"] = no_vote
            log.info("%s: %d faces have no FER+ vote for any of the 7 emotions", ferplus, no_vote)
    return dataset


def load_image_folder(root: str | Path) -> FaceDataset:
    """Load a folder-per-class tree ``<split>/<class>/*.png|jpg|tif|...`` (the still-image formats the agent reads;
    split names: Training, PublicTest, PrivateTest, or train/val/test). Images are converted to grey and resized to
    48x48."""
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found")
    split_names = {"training": "Training", "train": "Training", "publictest": "PublicTest", "val": "PublicTest",
                   "validation": "PublicTest", "privatetest": "PrivateTest", "test": "PrivateTest"}
    pixels: list[np.ndarray] = []
    labels: list[int] = []
    usage: list[str] = []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        split = split_names.get(split_dir.name.lower())
        if split is None:
            raise DatasetError(
                f"{split_dir}: unknown split folder; expected one of {', '.join(sorted(split_names))}"
            )
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            label = CLASS_SYNONYMS.get(class_dir.name.lower())
            if label is None:
                raise DatasetError(f"{class_dir}: unknown class folder; expected one of {', '.join(EMOTIONS)}")
            for image_path in sorted(class_dir.iterdir()):
                if image_path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                try:
                    with Image.open(image_path) as image:
                        grey = image.convert("L").resize((FACE_SIZE, FACE_SIZE), Image.Resampling.BILINEAR)
                except (OSError, UnidentifiedImageError) as error:
                    raise DatasetError(f"{image_path}: cannot read image: {error}") from error
                pixels.append(np.asarray(grey, dtype=np.uint8))
                labels.append(EMOTIONS.index(label))
                usage.append(split)
    if not pixels:
        raise DatasetError(f"{root}: no images found under <split>/<class>/")
    return FaceDataset(
        pixels=np.stack(pixels), labels=np.array(labels, dtype=np.int64), usage=np.array(usage), source=str(root)
    )


def load_dataset(path: str | Path, ferplus: str | Path | None = None, limit: int | None = None) -> FaceDataset:
    """Load any supported layout: a FER-2013 CSV file, a folder with one, or a folder-per-class image tree."""
    path = Path(path)
    if path.is_dir() and not any((path / n).is_file() for n in ("fer2013.csv", "fer2013.csv.gz")):
        if ferplus is not None:
            raise DatasetError(f"{path}: FER+ votes can only be attached to a FER-2013 CSV file")
        return load_image_folder(path)
    return load_fer(path, ferplus=ferplus, limit=limit)
