"""A training run's configuration, without PyTorch: the command line takes its options' defaults from here, so each
default is written once, and a runtime-only install can show ``fer-agent train --help``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    data: str
    out_dir: str = "runs/emotion"
    ferplus: str | None = None
    targets: str = "ferplus"
    epochs: int = 50
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    class_weighting: str = "none"
    augment: str = "standard"
    teachers: list[str] = field(default_factory=list)
    distill: float = 0.5
    width: int = 16
    blocks: list[int] = field(default_factory=lambda: [1, 1, 2])
    dropout: float = 0.3
    seed: int = 0
    limit: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.targets not in ("ferplus", "fer2013"):
            raise ValueError(f"targets: expected 'ferplus' or 'fer2013', got {self.targets!r}")
        if self.class_weighting not in ("none", "sqrt", "inverse"):
            raise ValueError(f"class_weighting: expected 'none', 'sqrt' or 'inverse', got {self.class_weighting!r}")
        if self.augment not in ("standard", "webcam"):
            raise ValueError(f"augment: expected 'standard' or 'webcam', got {self.augment!r}")
        if not 0 <= self.distill <= 1:
            raise ValueError(f"distill: expected a weight in 0..1, got {self.distill}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size: expected >= 1, got {self.epochs} and {self.batch_size}")
