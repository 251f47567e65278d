"""What larger emotion networks would cost: to train on this machine's CPU, and to run in the agent.

    python benchmarks/training_cost.py [--steps 10]

For each network (the shipped one first): parameters, ONNX file size, onnxruntime milliseconds per face at batch 49 on
one thread (the runtime budget is 1 ms), and the median seconds of one training step (forward, backward and SGD
update on a batch of 128 random faces, PyTorch on every core), with what that makes for one epoch of the 28,709
FER-2013 training faces (225 steps; the FER+ targets drop a few faces, and data loading, augmentation and the
PublicTest pass come on top) and for 50 and 200 epochs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import onnx
import torch
from common import footer_line, header_line, table
from emotion_model import milliseconds_per_face

from fer_agent.labels import EMOTIONS
from fer_agent.training.config import TrainConfig
from fer_agent.training.data import FACE_SIZE
from fer_agent.training.export import probability_graph
from fer_agent.training.model import EmotionNet, count_parameters
from fer_agent.vision.classifier import EmotionClassifier

NETWORKS = ((16, (1, 1, 2)), (24, (1, 1, 2)), (32, (1, 1, 2)), (32, (2, 2, 2)), (64, (2, 2, 2)))
TRAINING_FACES = 28_709
BATCH = 128


def seconds_per_step(model: EmotionNet, steps: int) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    generator = torch.Generator().manual_seed(0)
    faces = torch.rand(BATCH, 1, FACE_SIZE, FACE_SIZE, generator=generator) * 255
    targets = torch.softmax(torch.rand(BATCH, len(EMOTIONS), generator=generator), dim=1)
    model.train()
    timings = []
    for step in range(steps + 2):
        started = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(faces), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= 2:
            timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per network")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    first, fingerprint = header_line(f"training cost of larger networks; PyTorch {torch.__version__} on "
                                     f"{torch.get_num_threads()} threads")
    print(first + "\n")
    steps_per_epoch = -(-TRAINING_FACES // BATCH)
    shipped = TrainConfig(data="")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for width, blocks in NETWORKS:
            torch.manual_seed(0)
            model = EmotionNet(width=width, blocks_per_stage=blocks)
            path = Path(folder) / f"width{width}.onnx"
            onnx.save(probability_graph(model, "benchmark"), path)
            inference = statistics.median(milliseconds_per_face(EmotionClassifier(path, threads=1), 49, 20, 3))
            step = seconds_per_step(model, args.steps)
            epoch = step * steps_per_epoch
            name = f"width {width}, blocks {','.join(map(str, blocks))}"
            if (width, list(blocks)) == (shipped.width, shipped.blocks):
                name += " (shipped)"
            rows.append([name,
                         f"{count_parameters(model) / 1e6:.2f} M", f"{path.stat().st_size / 1e6:.1f} MB",
                         f"{inference:.2f}", f"{step:.2f}", f"{epoch / 60:.1f} min", f"{epoch * 50 / 3600:.1f} h",
                         f"{epoch * 200 / 3600:.1f} h"])
    print(table(["network", "parameters", "ONNX size", "ms/face (b49, 1 thread)", "s per training step (b128)",
                 "epoch (steps only)", "50 epochs", "200 epochs"], rows))
    print(footer_line(fingerprint))


if __name__ == "__main__":
    main()
