"""Batch augmentation for grey faces, in plain torch (there is no torchvision for the CPU build we use)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Random flip, rotation, scale and shift (one affine warp), then random erasing of a rectangle."""

    flip: float = 0.5
    max_rotation_degrees: float = 15.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    max_shift: float = 0.1
    erase: float = 0.5
    erase_area: tuple[float, float] = (0.02, 0.15)

    def __call__(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a float batch [N, 1, H, W] of grey values 0..255 with the given random generator."""
        n, _, height, width = pixels.shape

        def uniform(low: float, high: float, size: int = n) -> torch.Tensor:
            return torch.rand(size, generator=generator) * (high - low) + low

        angle = uniform(-1, 1) * math.radians(self.max_rotation_degrees)
        scale = uniform(*self.scale_range)
        sign = torch.where(torch.rand(n, generator=generator) < self.flip, -1.0, 1.0)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([
            torch.stack([cos * sign, -sin, uniform(-1, 1) * self.max_shift * 2], dim=1),
            torch.stack([sin * sign, cos, uniform(-1, 1) * self.max_shift * 2], dim=1),
        ], dim=1).to(pixels.device)
        grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
        warped = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)

        area = uniform(*self.erase_area) * height * width
        aspect = torch.exp(uniform(math.log(0.3), math.log(3.3)))
        erase_h = torch.sqrt(area * aspect).clamp(1, height).long()
        erase_w = torch.sqrt(area / aspect).clamp(1, width).long()
        top = (torch.rand(n, generator=generator) * (height - erase_h + 1)).long()
        left = (torch.rand(n, generator=generator) * (width - erase_w + 1)).long()
        rows = torch.arange(height).view(1, height, 1)
        cols = torch.arange(width).view(1, 1, width)
        inside = (
            (rows >= top.view(n, 1, 1)) & (rows < (top + erase_h).view(n, 1, 1))
            & (cols >= left.view(n, 1, 1)) & (cols < (left + erase_w).view(n, 1, 1))
        )
        chosen = (torch.rand(n, generator=generator) < self.erase).view(n, 1, 1)
        mask = (inside & chosen).unsqueeze(1).to(pixels.device)
        noise = (torch.rand(pixels.shape, generator=generator) * 255).to(pixels.device)
        return torch.where(mask, noise, warped)


def _dct_matrix(size: int = 8) -> torch.Tensor:
    """The orthonormal DCT-II matrix JPEG uses on 8x8 blocks."""
    k = torch.arange(size, dtype=torch.float32).view(-1, 1)
    n = torch.arange(size, dtype=torch.float32).view(1, -1)
    matrix = torch.cos(math.pi * (2 * n + 1) * k / (2 * size)) * math.sqrt(2 / size)
    matrix[0] /= math.sqrt(2)
    return matrix


# The JPEG standard's luminance quantisation table (ITU-T T.81, Annex K), scaled by quality as libjpeg does.
_JPEG_LUMINANCE = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99],
], dtype=torch.float32)


@dataclass(frozen=True)
class WebcamDegradation:
    """What a face goes through between a student's webcam and the agent's 48x48 crop, applied after
    ``Augmentation``: a head turned up to ``max_yaw_degrees`` (the face narrowed about a random vertical axis),
    uneven light (a brightness gradient across the face and a gamma change), the blur of a small face scaled up to
    48 px, sensor noise, and the blocking of JPEG/H.264 compression (8x8 DCT quantised at a random quality). Each
    effect is applied to a face with probability ``chance``."""

    chance: float = 0.5
    max_yaw_degrees: float = 30.0
    max_light_gradient: float = 0.4
    gamma_range: tuple[float, float] = (0.6, 1.6)
    max_blur_sigma: float = 1.0
    max_noise: float = 6.0
    quality_range: tuple[int, int] = (25, 90)

    def __call__(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Degrade a float batch [N, 1, H, W] of grey values 0..255 (H and W multiples of 8)."""
        n = pixels.shape[0]

        def chosen() -> torch.Tensor:
            return (torch.rand(n, generator=generator) < self.chance).view(n, 1, 1, 1).to(pixels.device)

        def uniform(low: float, high: float) -> torch.Tensor:
            return (torch.rand(n, generator=generator) * (high - low) + low).to(pixels.device)

        x = torch.where(chosen(), self._turn(pixels, uniform), pixels)
        x = torch.where(chosen(), self._light(x, uniform), x)
        x = torch.where(chosen(), self._blur(x, uniform(0.3, self.max_blur_sigma)), x)
        noise = torch.randn(x.shape, generator=generator).to(x.device) * uniform(0, self.max_noise).view(n, 1, 1, 1)
        x = torch.where(chosen(), x + noise, x).clamp(0, 255)
        return torch.where(chosen(), self._compress(x, uniform(*self.quality_range)), x)

    def _turn(self, pixels: torch.Tensor, uniform) -> torch.Tensor:
        yaw = uniform(-1, 1) * math.radians(self.max_yaw_degrees)
        squeeze = torch.cos(yaw)
        axis = torch.sin(yaw) * 0.5
        zeros = torch.zeros_like(squeeze)
        theta = torch.stack([
            torch.stack([1 / squeeze, zeros, axis * (1 - 1 / squeeze)], dim=1),
            torch.stack([zeros, torch.ones_like(squeeze), zeros], dim=1),
        ], dim=1)
        grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
        return F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _light(self, pixels: torch.Tensor, uniform) -> torch.Tensor:
        n, _, height, width = pixels.shape
        direction = uniform(0, 2 * math.pi)
        rows = torch.linspace(-1, 1, height, device=pixels.device).view(1, height, 1)
        cols = torch.linspace(-1, 1, width, device=pixels.device).view(1, 1, width)
        ramp = torch.cos(direction).view(n, 1, 1) * cols + torch.sin(direction).view(n, 1, 1) * rows
        gain = 1 + uniform(0, self.max_light_gradient).view(n, 1, 1) * ramp
        gamma = torch.exp(uniform(math.log(self.gamma_range[0]), math.log(self.gamma_range[1]))).view(n, 1, 1, 1)
        return (255 * (pixels / 255).clamp(min=0) ** gamma * gain.unsqueeze(1)).clamp(0, 255)

    @staticmethod
    def _blur(pixels: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = pixels.shape
        offsets = torch.arange(-3, 4, dtype=torch.float32, device=pixels.device)
        kernel = torch.exp(-(offsets.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))
        kernel = kernel / kernel.sum(dim=1, keepdim=True)
        flat = F.pad(pixels.reshape(1, n * channels, height, width), (3, 3, 3, 3), mode="replicate")
        flat = F.conv2d(flat, kernel.view(n, 1, 1, 7).repeat_interleave(channels, 0), groups=n * channels)
        flat = F.conv2d(flat, kernel.view(n, 1, 7, 1).repeat_interleave(channels, 0), groups=n * channels)
        return flat.reshape(n, channels, height, width)

    @staticmethod
    def _compress(pixels: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = pixels.shape
        scale = torch.where(quality < 50, 50 / quality, 2 - quality / 50).view(n, 1, 1)
        table = (_JPEG_LUMINANCE.to(pixels.device) * scale).round().clamp(min=1).view(n, 1, 8, 8)
        dct = _dct_matrix().to(pixels.device)
        blocks = (pixels - 128).reshape(n, channels, height // 8, 8, width // 8, 8).permute(0, 1, 2, 4, 3, 5)
        blocks = blocks.reshape(n, channels * (height // 8) * (width // 8), 8, 8)
        coefficients = dct @ blocks @ dct.T
        coefficients = (coefficients / table).round() * table
        blocks = dct.T @ coefficients @ dct
        blocks = blocks.reshape(n, channels, height // 8, width // 8, 8, 8).permute(0, 1, 2, 4, 3, 5)
        return (blocks.reshape(n, channels, height, width) + 128).clamp(0, 255)
