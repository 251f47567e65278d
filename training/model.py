"""The emotion CNN: a small residual network for grey 48x48 faces.

The network takes raw grey pixels (0..255) and does its own scaling, so the exported ONNX graph needs no
preprocessing outside it. ``EmotionNet.forward`` returns logits; ``ProbabilityHead`` wraps it with the softmax that
the exported graph carries.
"""

from __future__ import annotations

import torch
from torch import nn

from fer_agent.labels import EMOTIONS

PIXEL_MEAN = 128.0
PIXEL_STD = 64.0


def _conv_bn(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut; the first may halve the resolution and change the width."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn(in_channels, out_channels, stride)
        self.conv2 = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class EmotionNet(nn.Module):
    """Stem at full resolution, then residual stages that each halve the resolution and double the width."""

    def __init__(self, width: int = 32, blocks_per_stage: tuple[int, ...] = (1, 1, 1), dropout: float = 0.3) -> None:
        super().__init__()
        self.config = {"width": width, "blocks_per_stage": list(blocks_per_stage), "dropout": dropout}
        self.stem = _conv_bn(1, width, stride=2)
        layers: list[nn.Module] = []
        channels = width
        for stage, blocks in enumerate(blocks_per_stage):
            out_channels = width * 2 ** (stage + 1) if stage > 0 else width * 2
            for block in range(blocks):
                stride = 2 if block == 0 and stage > 0 else 1
                layers.append(ResidualBlock(channels, out_channels, stride))
                channels = out_channels
        self.stages = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, len(EMOTIONS))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels - PIXEL_MEAN) / PIXEL_STD
        x = self.stages(self.stem(x))
        return self.classifier(self.dropout(torch.flatten(self.pool(x), 1)))


class ProbabilityHead(nn.Module):
    """What the ONNX file contains: the network followed by a softmax over the 7 emotions."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(pixels), dim=1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
