"""Evaluation of an ONNX emotion model on a FER-2013 split: FER+ majority-vote and FER-2013-label accuracy,
macro-F1, per-class precision and recall, and a confusion matrix; and on any folder-per-class image set through the
agent's full runtime path (detect, crop, classify)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from fer_agent.capture.sources import IMAGE_SUFFIXES, read_image
from fer_agent.errors import CaptureError, DatasetError
from fer_agent.labels import EMOTIONS
from fer_agent.training.calibration import BINS, reliability
from fer_agent.training.data import CLASS_SYNONYMS, FaceDataset
from fer_agent.vision.classifier import EmotionClassifier


@dataclass
class Evaluation:
    split: str
    faces: int
    reference: str
    reference_faces: int
    ferplus_accuracy: float | None
    fer2013_accuracy: float
    macro_f1: float
    precision: dict[str, float]
    recall: dict[str, float]
    confusion: list[list[int]]
    ece: float
    reliability: list[dict]

    def to_dict(self) -> dict:
        return asdict(self)

    def __rich__(self) -> Group:
        """What ``fer-agent evaluate --data`` prints."""
        lines: list[RenderableType] = []
        if self.ferplus_accuracy is not None:
            lines.append(f"FER+ majority-vote accuracy: [bold]{self.ferplus_accuracy:.4f}[/] "
                         f"({self.reference_faces} of {self.faces} {self.split} faces have a majority)")
        lines += [f"FER-2013-label accuracy:     [bold]{self.fer2013_accuracy:.4f}[/] ({self.faces} faces)",
                  f"macro-F1 ({self.reference}): {self.macro_f1:.4f}",
                  f"expected calibration error ({BINS} bins, against {self.reference}): {self.ece:.2%}",
                  per_class_table(self)]
        return Group(*lines)


def per_class_table(result: Evaluation | ImageEvaluation) -> Table:
    table = Table("emotion", "precision", "recall", "faces", title=f"per class, against {result.reference}")
    for index, (name, precision) in enumerate(result.precision.items()):
        table.add_row(name, f"{precision:.3f}", f"{result.recall[name]:.3f}", str(sum(result.confusion[index])))
    return table


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int = len(EMOTIONS)) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def per_class_scores(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 per class from a confusion matrix (rows: truth, columns: prediction)."""
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros_like(true_positive), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(both), where=both > 0)
    return precision, recall, f1


def predict_dataset(classifier: EmotionClassifier, dataset: FaceDataset, batch_size: int = 256,
                    console: Console | None = None) -> np.ndarray:
    if classifier.input_size != dataset.pixels.shape[1]:
        raise DatasetError(
            f"the model takes {classifier.input_size}x{classifier.input_size} faces, the dataset has "
            f"{dataset.pixels.shape[1]}x{dataset.pixels.shape[2]}"
        )
    outputs = []
    with Progress(console=console or Console(stderr=True), transient=True) as progress:
        task = progress.add_task("evaluating", total=len(dataset))
        for start in range(0, len(dataset), batch_size):
            outputs.append(classifier.predict(dataset.pixels[start:start + batch_size]))
            progress.advance(task, len(outputs[-1]))
    return np.concatenate(outputs)


def evaluate(probabilities: np.ndarray, dataset: FaceDataset, split: str) -> Evaluation:
    """Score predictions against the FER+ majority vote (the reference, when FER+ is attached) and FER-2013 labels."""
    predicted = probabilities.argmax(axis=1)
    fer2013_accuracy = float((predicted == dataset.labels).mean())
    if dataset.votes is not None:
        truth = dataset.majority_labels()
        reference = "FER+ majority vote"
    else:
        truth = dataset.labels
        reference = "FER-2013 labels"
    counted = truth >= 0
    matrix = confusion_matrix(truth[counted], predicted[counted])
    precision, recall, f1 = per_class_scores(matrix)
    reference_accuracy = float(np.trace(matrix) / max(matrix.sum(), 1))
    calibration = reliability(probabilities[counted], truth[counted])
    return Evaluation(
        split=split,
        faces=len(dataset),
        reference=reference,
        reference_faces=int(counted.sum()),
        ferplus_accuracy=reference_accuracy if dataset.votes is not None else None,
        fer2013_accuracy=fer2013_accuracy,
        macro_f1=float(f1.mean()),
        precision={name: float(p) for name, p in zip(EMOTIONS, precision)},
        recall={name: float(r) for name, r in zip(EMOTIONS, recall)},
        confusion=matrix.tolist(),
        ece=calibration.ece,
        reliability=calibration.bins,
    )


def _save(figure, path: str | Path) -> Path:
    """Write a pyplot figure to ``path`` (its folder made when missing) and free it."""
    from matplotlib import pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def save_reliability_diagram(evaluation: Evaluation, path: str | Path, title: str) -> Path:
    """Draw the reliability diagram (accuracy against confidence per bin, with the faces per bin) and save it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    bins = [row for row in evaluation.reliability if row["faces"]]
    figure, axes = plt.subplots(figsize=(5.5, 5), dpi=120)
    width = 1.0 / len(evaluation.reliability)
    axes.bar([row["lower"] for row in bins], [row["accuracy"] for row in bins], width=width, align="edge",
             color="#1f77b4", edgecolor="white", label="accuracy")
    axes.plot([0, 1], [0, 1], color="#888888", linestyle="--", label="perfect calibration")
    axes.plot([row["lower"] + width / 2 for row in bins], [row["confidence"] for row in bins], "_", color="#d62728",
              markersize=12, markeredgewidth=2, label="mean confidence in the bin")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence of the top label")
    axes.set_ylabel(f"accuracy ({evaluation.reference})")
    axes.set_title(f"{title}\nECE {evaluation.ece:.2%} over {evaluation.reference_faces} faces")
    axes.legend(loc="upper left", frameon=False)
    figure.tight_layout()
    return _save(figure, path)


def save_confusion_matrix(evaluation: Evaluation | ImageEvaluation, path: str | Path, title: str) -> Path:
    """Draw the confusion matrix (rows normalised to recall) with matplotlib and save it as an image."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    matrix = np.array(evaluation.confusion, dtype=np.float64)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    figure, axes = plt.subplots(figsize=(7, 6), dpi=120)
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            axes.text(j, i, f"{share[i, j]:.2f}\n({int(matrix[i, j])})", ha="center", va="center", fontsize=7,
                      color="white" if share[i, j] > 0.5 else "black")
    axes.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    axes.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    axes.set_xlabel("predicted")
    axes.set_ylabel(f"true ({evaluation.reference})")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="share of the true class")
    figure.tight_layout()
    return _save(figure, path)


@dataclass
class ImageEvaluation:
    """An emotion model evaluated through the agent's full runtime path (face detector, crop, classifier) on a
    folder-per-class image set. ``accuracy`` counts the images where a face was found; ``end_to_end_accuracy``
    counts every image, an image without a face as wrong. ``no_face`` lists those images; ``skipped_folders`` the
    class folders whose name is none of our labels (for example contempt); ``macro_f1`` is over ``classes``, the
    classes the set has."""

    root: str
    images: int
    faces: int
    accuracy: float
    end_to_end_accuracy: float
    macro_f1: float
    precision: dict[str, float]
    recall: dict[str, float]
    confusion: list[list[int]]
    no_face: list[str]
    skipped_folders: list[str]
    classes: list[str]
    reference: str = "folder names"

    def to_dict(self) -> dict:
        return asdict(self)

    def __rich__(self) -> Group:
        """What ``fer-agent evaluate --images`` prints; the images without a face one per line, never wrapped."""
        lines: list[RenderableType] = [
            f"{self.images} images in {escape(self.root)}: a face found in {self.faces}",
            f"accuracy where a face was found: [bold]{self.accuracy:.4f}[/]; end to end (no face counts as wrong): "
            f"{self.end_to_end_accuracy:.4f}; macro-F1 over the {len(self.classes)} classes of the set "
            f"{self.macro_f1:.4f}", per_class_table(self)]
        if self.skipped_folders:
            lines.append(f"skipped folders (not one of our labels): {escape(', '.join(self.skipped_folders))}")
        if self.no_face:
            lines.append(f"no face found in {len(self.no_face)} images:")
            lines += [Text(f"  {path}", no_wrap=True, overflow="ignore") for path in self.no_face]
        return Group(*lines)


def image_folder(root: str | Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """The images (:data:`IMAGE_SUFFIXES`) in ``root/<class>/**`` -> (image path, label index) in name order, and the
    class folders that were skipped because their name is none of our labels or their synonyms."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found")
    items: list[tuple[Path, int]] = []
    skipped: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = CLASS_SYNONYMS.get(folder.name.lower())
        if label is None:
            skipped.append(folder.name)
            continue
        items.extend((path, EMOTIONS.index(label)) for path in sorted(folder.rglob("*"))
                     if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
    if not items:
        raise DatasetError(f"{root}: no images found under <class>/ folders named after our labels "
                           f"({', '.join(EMOTIONS)}) or common synonyms (anger, happiness, sadness, surprised, ...)")
    return items, skipped


def evaluate_images(analyzer, root: str | Path, limit: int | None = None,
                    console: Console | None = None) -> ImageEvaluation:
    """Each image is one frame of a single view (as from a webcam): the largest face found is cropped and
    classified exactly as the agent does it."""
    items, skipped = image_folder(root)
    items = items[:limit]
    truth, predicted, no_face = [], [], []
    with Progress(console=console or Console(stderr=True), transient=True) as progress:
        task = progress.add_task("detecting and classifying", total=len(items))
        for path, label in items:
            try:
                image = read_image(path)
            except CaptureError as error:
                raise DatasetError(str(error)) from None
            faces = analyzer.find(image)
            if not faces:
                no_face.append(str(path))
            else:
                largest = max(faces, key=lambda observation: observation.face.box[2] * observation.face.box[3])
                truth.append(label)
                predicted.append(int(largest.probabilities.argmax()))
            progress.advance(task)
    matrix = confusion_matrix(np.array(truth, np.int64), np.array(predicted, np.int64))
    precision, recall, f1 = per_class_scores(matrix)
    correct = int(np.trace(matrix))
    # The set's own classes: one it does not have (JAFFE has no contempt, some sets no disgust) is not a zero.
    present = sorted({label for _path, label in items})
    return ImageEvaluation(
        root=str(root), images=len(items), faces=len(truth), accuracy=correct / max(len(truth), 1),
        end_to_end_accuracy=correct / len(items), macro_f1=float(f1[present].mean()),
        classes=[EMOTIONS[index] for index in present],
        precision={name: float(p) for name, p in zip(EMOTIONS, precision)},
        recall={name: float(r) for name, r in zip(EMOTIONS, recall)},
        confusion=matrix.tolist(), no_face=no_face, skipped_folders=skipped)
