"""Small image folders and tables written by the tests: two classes that a tiny CNN separates
(bright left half = cat, bright top half = dog)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ["cat", "dog"]


def image(label: int, rng: np.random.Generator, size: int = 24) -> np.ndarray:
    arr = (rng.random((size, size, 3)) * 60).astype(np.uint8)
    if label == 0:
        arr[:, : size // 2] += 180
    else:
        arr[: size // 2, :] += 180
    return arr


def write_images(folder: Path, n: int, labeled: bool, seed: int = 0,
                 size: int = 24) -> list[int]:
    """``n`` PNG images, alternating classes; in class sub-folders when ``labeled``.
    Returns the class of each image in file-name order."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    labels = []
    for i in range(n):
        label = i % 2
        target = folder / CLASSES[label] if labeled else folder
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image(label, rng, size)).save(target / f"img_{i:03d}.png")
        labels.append(label)
    return labels
