"""Write FER-2013 PrivateTest faces as a folder-per-class image set of larger pictures, for
`fer-agent evaluate --images`, which measures accuracy through the agent's full path (detector, crop, classifier).

    python benchmarks/upscaled_faces.py --data ../shared/datasets/fer2013 --out /tmp/privatetest-images
    fer-agent evaluate --images /tmp/privatetest-images

Each face with a FER+ majority label is upscaled 3x (144x144, bicubic) onto a 320x240 grey canvas of a random
level, into a folder named after its majority label, spelled as other datasets spell them (anger, happiness,
sadness, surprised), so the synonyms are exercised too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from fer_agent.labels import EMOTIONS
from fer_agent.training.data import load_fer

FOLDERS = {"angry": "anger", "happy": "happiness", "sad": "sadness", "surprise": "surprised"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="FER-2013 folder with fer2013new.csv beside it")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--scale", type=int, default=3)
    options = parser.parse_args()
    data = load_fer(options.data).split("PrivateTest")
    labels = data.majority_labels()
    rng = np.random.default_rng(0)
    side = 48 * options.scale
    written = 0
    for index in np.flatnonzero(labels >= 0):
        canvas = np.full((max(240, side + 40), max(320, side + 40)), int(rng.integers(60, 200)), np.uint8)
        top, left = (canvas.shape[0] - side) // 3, (canvas.shape[1] - side) // 2
        canvas[top:top + side, left:left + side] = cv2.resize(data.pixels[index], (side, side),
                                                              interpolation=cv2.INTER_CUBIC)
        name = EMOTIONS[labels[index]]
        folder = options.out / FOLDERS.get(name, name)
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:05d}.png"), canvas)
        written += 1
    print(f"{written} images in {options.out}")


if __name__ == "__main__":
    main()
