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
