"""The webcam degradation on real FER-2013 faces: its JPEG step matches a real JPEG encoder, its blur smooths
without changing the light, and a face is left alone when no effect is drawn."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fer_agent.training.augment import Augmentation, WebcamDegradation
from fer_agent.training.data import load_dataset


@pytest.fixture(scope="module")
def faces(fer_subset: Path) -> torch.Tensor:
    return torch.from_numpy(load_dataset(fer_subset).pixels[:32]).float().unsqueeze(1)


def test_compression_matches_libjpeg(faces: torch.Tensor) -> None:
    for quality in (25, 50, 90):
        ours = WebcamDegradation._compress(faces, torch.full((len(faces),), float(quality)))[:, 0].numpy()
        encoded = []
        for face in faces[:, 0].numpy().astype(np.uint8):
            buffer = io.BytesIO()
            Image.fromarray(face).save(buffer, "JPEG", quality=quality)
            encoded.append(np.asarray(Image.open(buffer), dtype=np.float32))
        pillow = np.stack(encoded)
        # Within a grey level of Pillow's libjpeg, while the compression itself moves pixels by several levels.
        assert np.abs(ours - pillow).mean() < 1.0, quality
        assert np.abs(faces[:, 0].numpy() - pillow).mean() > 1.5, quality


def test_blur_smooths_and_keeps_the_light(faces: torch.Tensor) -> None:
    def detail(x: torch.Tensor) -> float:
        return float((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean())

    blurred = WebcamDegradation._blur(faces, torch.full((len(faces),), 1.0))
    assert detail(blurred) < 0.7 * detail(faces)
    assert abs(float(blurred.mean() - faces.mean())) < 1.0


def test_effects_are_drawn_per_face_and_stay_in_range(faces: torch.Tensor) -> None:
    untouched = WebcamDegradation(chance=0.0)(faces, torch.Generator().manual_seed(0))
    assert torch.equal(untouched, faces)

    degraded = WebcamDegradation(chance=1.0)(faces, torch.Generator().manual_seed(0))
    assert degraded.shape == faces.shape and degraded.min() >= 0 and degraded.max() <= 255
    assert ((degraded - faces).abs().mean(dim=(1, 2, 3)) > 2).all()
    again = WebcamDegradation(chance=1.0)(faces, torch.Generator().manual_seed(0))
    assert torch.equal(degraded, again)

    # Each of the five effects is drawn for each face: at chance 0.5 about 1 face in 2**5 is left untouched, where
    # one draw for the whole batch would leave all faces or none.
    many = Augmentation()(faces.repeat(8, 1, 1, 1), torch.Generator().manual_seed(1))
    half = WebcamDegradation(chance=0.5)(many, torch.Generator().manual_seed(1))
    assert half.shape == many.shape and torch.isfinite(half).all()
    untouched = int((half == many).flatten(1).all(dim=1).sum())
    assert 2 <= untouched <= 20, untouched  # 8 expected of 256
