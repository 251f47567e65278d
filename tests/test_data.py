"""Dataset loaders: FER-2013 CSV (plain, gzip), FER+ votes, folder-per-class trees, and every bad-input case."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_agent.errors import DatasetError
from fer_agent.labels import EMOTIONS
from fer_agent.training.data import FERPLUS_COLUMNS, load_dataset, load_fer, load_fer2013_csv, load_image_folder

FACE = " ".join(str(i % 256) for i in range(48 * 48))


def write_fer(path: Path, rows: list[tuple], header=("emotion", "pixels", "Usage")) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_ferplus(path: Path, rows: list[tuple]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FERPLUS_COLUMNS)
        writer.writerows(rows)
    return path


def votes(**counts: int) -> list[int]:
    return [counts.get(name, 0) for name in FERPLUS_COLUMNS[2:]]


@pytest.mark.parametrize("name", ["fer2013.csv", "fer2013.csv.gz"])
def test_kaggle_csv_plain_and_gzip(tmp_path: Path, name: str) -> None:
    path = write_fer(tmp_path / name, [(3, FACE, "Training"), (0, FACE, "PublicTest"), (6, FACE, "PrivateTest")])
    dataset = load_fer2013_csv(path)
    assert dataset.pixels.shape == (3, 48, 48) and dataset.pixels.dtype == np.uint8
    assert dataset.pixels[0, 0, :5].tolist() == [0, 1, 2, 3, 4]
    assert dataset.pixels[0, 47, 47] == (48 * 48 - 1) % 256
    assert dataset.labels.tolist() == [3, 0, 6]
    assert dataset.usage.tolist() == ["Training", "PublicTest", "PrivateTest"]
    assert len(dataset.split("PublicTest")) == 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ((3, " ".join(["7"] * 2000), "Training"), "line 3: expected 2304 pixel values, got 2000"),
        ((3, FACE.replace("5", "x", 1), "Training"), "line 3: pixels must be whole numbers"),
        ((3, FACE.replace("255", "256", 1), "Training"), "line 3: pixel values must be 0..255"),
        ((9, FACE, "Training"), "line 3: unknown emotion label '9'"),
        (("happy", FACE, "Training"), "line 3: unknown emotion label 'happy'"),
        ((3, FACE, "Holdout"), "line 3: unknown Usage 'Holdout'"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, row: tuple, message: str) -> None:
    path = write_fer(tmp_path / "fer2013.csv", [(3, FACE, "Training"), row])
    with pytest.raises(DatasetError, match=message) as caught:
        load_fer2013_csv(path)
    assert str(path) in str(caught.value)


def test_missing_column(tmp_path: Path) -> None:
    path = write_fer(tmp_path / "fer2013.csv", [(3, FACE)], header=("emotion", "pixels"))
    with pytest.raises(DatasetError, match="missing column.*Usage"):
        load_fer2013_csv(path)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="file not found"):
        load_fer2013_csv(tmp_path / "nothing.csv")
    broken = tmp_path / "fer2013.csv.gz"
    broken.write_bytes(b"this is not gzip")
    with pytest.raises(DatasetError, match="cannot read"):
        load_fer2013_csv(broken)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: no fer2013.csv or fer2013.csv.gz in this folder"):
        load_fer(tmp_path / "empty")


def test_ferplus_votes_distributions_and_majority(tmp_path: Path) -> None:
    write_fer(tmp_path / "fer2013.csv", [(3, FACE, "Training")] * 6)
    write_ferplus(tmp_path / "fer2013new.csv", [
        ("Training", "a.png", *votes(happiness=8, surprise=2)),
        ("Training", "b.png", *votes(neutral=5, sadness=4, anger=1)),
        ("Training", "c.png", *votes(contempt=6, anger=4)),
        ("Training", "d.png", *votes(fear=5, surprise=5)),
        ("Training", "e.png", *votes(unknown=4, NF=6)),
        ("Training", "f.png", *votes(disgust=1, unknown=9)),
    ])
    dataset = load_fer(tmp_path)
    soft = dataset.soft_labels()
    happy, surprise, neutral, sad, angry = (EMOTIONS.index(n) for n in ("happy", "surprise", "neutral", "sad", "angry"))
    assert soft[0, happy] == pytest.approx(0.8) and soft[0, surprise] == pytest.approx(0.2)
    # A lone vote beside repeated ones is dropped as annotator noise.
    assert soft[1, neutral] == pytest.approx(5 / 9) and soft[1, angry] == 0
    # Contempt is not one of our classes: only the anger votes remain.
    assert soft[2, angry] == pytest.approx(1.0)
    # A lone vote is kept when it is the only vote for one of our emotions.
    assert soft[5, EMOTIONS.index("disgust")] == pytest.approx(1.0)
    assert soft[4].sum() == 0
    assert dataset.skipped["no FER+ vote for any of the 7 emotions"] == 1
    # Majority rule: top over all 10 columns; contempt/unknown/NF winners and ties do not count.
    assert dataset.majority_labels().tolist() == [happy, neutral, -1, -1, -1, -1]
    np.testing.assert_allclose(soft.sum(axis=1), [1, 1, 1, 1, 0, 1], atol=1e-6)


def test_ferplus_not_aligned(tmp_path: Path) -> None:
    fer = write_fer(tmp_path / "fer2013.csv", [(3, FACE, "Training"), (3, FACE, "PublicTest")])
    short = write_ferplus(tmp_path / "short.csv", [("Training", "a.png", *votes(happiness=10))])
    with pytest.raises(DatasetError, match="not aligned.*1 rows where the FER-2013 file has 2"):
        load_fer(fer, ferplus=short)
    swapped = write_ferplus(tmp_path / "swapped.csv", [
        ("Training", "a.png", *votes(happiness=10)), ("PrivateTest", "b.png", *votes(neutral=10)),
    ])
    with pytest.raises(DatasetError, match="line 3: FER\\+ file not aligned.*'PrivateTest'.*row 2 says 'PublicTest'"):
        load_fer(fer, ferplus=swapped)
    bad_votes = write_ferplus(tmp_path / "bad.csv", [
        ("Training", "a.png", *votes(happiness=10)), ("PublicTest", "b.png", "x", *votes()[1:]),
    ])
    with pytest.raises(DatasetError, match="bad.csv, line 3: vote counts must be whole numbers"):
        load_fer(fer, ferplus=bad_votes)


def make_image_tree(root: Path) -> None:
    rng = np.random.default_rng(0)
    for split, folder in (("train", "happiness"), ("train", "Angry"), ("test", "surprised")):
        (root / split / folder).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(root / split / folder / f"{i}.png")
    (root / "train" / "happiness" / "notes.txt").write_text("not an image")


def test_image_folder_tree(tmp_path: Path) -> None:
    make_image_tree(tmp_path)
    dataset = load_dataset(tmp_path)
    assert dataset.pixels.shape == (6, 48, 48)
    assert sorted(dataset.labels.tolist()) == sorted([EMOTIONS.index(n) for n in ("angry", "happy", "surprise")] * 2)
    assert dataset.split("Training").labels.tolist().count(EMOTIONS.index("happy")) == 2
    assert set(dataset.split("PrivateTest").labels.tolist()) == {EMOTIONS.index("surprise")}


def test_image_folder_errors(tmp_path: Path) -> None:
    make_image_tree(tmp_path)
    (tmp_path / "train" / "boredom").mkdir()
    with pytest.raises(DatasetError, match="boredom: unknown class folder"):
        load_image_folder(tmp_path)
    (tmp_path / "train" / "boredom").rmdir()
    corrupt = tmp_path / "train" / "Angry" / "broken.jpg"
    corrupt.write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="broken.jpg: cannot read image"):
        load_image_folder(tmp_path)
    corrupt.unlink()
    (tmp_path / "holdout").mkdir()
    with pytest.raises(DatasetError, match="holdout: unknown split folder"):
        load_image_folder(tmp_path)
    with pytest.raises(DatasetError, match="no images found"):
        load_image_folder(tmp_path / "holdout")


def test_shared_first_rows(shared_fer: Path) -> None:
    dataset = load_fer2013_csv(shared_fer / "fer2013.csv.gz", limit=50)
    assert dataset.pixels.shape == (50, 48, 48)
    assert set(dataset.labels.tolist()) <= set(range(7))
    assert (dataset.usage == "Training").all()


def test_shared_subset_with_ferplus(fer_subset: Path) -> None:
    dataset = load_dataset(fer_subset)
    assert len(dataset) == 480 and dataset.votes is not None
    private = dataset.split("PrivateTest")
    majority = private.majority_labels()
    assert (majority >= 0).mean() > 0.85
    assert 0.4 < (majority[majority >= 0] == private.labels[majority >= 0]).mean() < 0.9
