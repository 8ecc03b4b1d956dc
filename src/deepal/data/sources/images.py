"""Image folders: class sub-folders for labeled images, a flat folder for an unlabeled pool.

Images are decoded once with Pillow (the optional extra ``images``), converted to RGB or
grayscale, resized to a fixed ``size`` x ``size`` and kept as one ``uint8`` tensor
``(N, C, H, W)``; the handler scales and normalises a batch at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from deepal import resources
from deepal.config.base import Settings, validated
from deepal.data.handlers import image_handler
from deepal.data.pool import Data
from deepal.data.sources.labels import encode_labels
from deepal.errors import CorruptDataError, DatasetNotFoundError, DeepALError

#: The largest side images are resized to.
MAX_IMAGE_SIZE = 4096

#: File name endings read as images.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def require_pillow() -> Any:
    """The ``PIL.Image`` module, or an error that says how to install it."""
    try:
        from PIL import Image
    except ImportError as error:
        raise DeepALError(
            'reading images needs Pillow: pip install "deepal[images]"'
        ) from error
    return Image


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _class_folders(folder: Path) -> dict[str, list[Path]]:
    """The images of each sub-folder holding any (hidden folders skipped), by folder name."""
    sub = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    per_class = {d.name: _images_in(d) for d in sub}
    return {name: files for name, files in per_class.items() if files}


def list_image_folder(
    root: str | os.PathLike[str],
) -> tuple[list[Path], list[str] | None, list[str] | None]:
    """The images of a folder and, for class sub-folders, their classes.

    Parameters
    ----------
    root:
        Either a folder with one sub-folder per class (``root/cat/1.jpg``...), or a flat folder
        of images (an unlabeled pool).

    Returns
    -------
    paths, labels, classes
        The image files (sorted), then for class sub-folders each image's class name and the
        sorted class names; ``None, None`` for a flat folder.
    """
    folder = Path(root)
    if folder.exists() and not folder.is_dir():
        raise DeepALError(f"image folder {str(root)!r} is a file, not a folder: name the "
                          "folder that holds the images or their class sub-folders")
    if not folder.is_dir():
        raise DatasetNotFoundError(f"image folder {str(root)!r} does not exist")
    flat = _images_in(folder)
    per_class = _class_folders(folder)
    if flat and per_class:
        raise DeepALError(
            f"{folder} holds both images and class sub-folders of images: put every image in "
            "a class sub-folder (labeled) or all of them in the folder itself (unlabeled)"
        )
    if flat:
        return flat, None, None
    if not per_class:
        raise DatasetNotFoundError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder} or its sub-folders"
        )
    paths = [p for files in per_class.values() for p in files]
    labels = [name for name, files in per_class.items() for _ in files]
    return paths, labels, list(per_class)


class _ImageShape(Settings):
    size: int = Field(ge=4, le=MAX_IMAGE_SIZE)
    channels: Literal[1, 3]


def decode_images(
    paths: Sequence[Path],
    size: int = 32,
    channels: int = 3,
    on_image: Callable[[int, Any], None] | None = None,
) -> torch.Tensor:
    """Decode image files once into a ``uint8`` tensor ``(N, channels, size, size)``.

    Parameters
    ----------
    paths:
        The files.
    size:
        Every image is resized to ``size`` x ``size`` pixels (bilinear, aspect not kept).
    channels:
        3 (RGB) or 1 (grayscale).
    on_image:
        Called as ``on_image(i, pil_image)`` with each decoded image at full size (e.g. to
        keep a preview).

    Returns
    -------
    torch.Tensor
        The pixels, ``uint8``.

    Raises
    ------
    ConfigError
        ``size`` is not a whole number from 4 to :data:`MAX_IMAGE_SIZE`, or ``channels`` is
        not 1 or 3.
    DeepALError
        The pixels would not fit in this machine's memory (checked before allocating them).
    CorruptDataError
        An image cannot be decoded.

    Examples
    --------
    ``pixels = decode_images(sorted(Path("photos").glob("*.jpg")), size=64)``
    """
    validated(_ImageShape, {"size": size, "channels": channels}, "images:")
    resources.refuse_beyond_memory(len(paths) * channels * size * size,
                                   f"{len(paths)} images of {size} x {size} pixels",
                                   "use a smaller image size")
    Image = require_pillow()
    from PIL import ImageOps

    out = torch.empty((len(paths), channels, size, size), dtype=torch.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                # Photos store their rotation in EXIF: show and train on them upright.
                img = ImageOps.exif_transpose(img).convert("RGB" if channels == 3 else "L")
                if on_image is not None:
                    on_image(i, img)
                small = img.resize((size, size), Image.BILINEAR)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise CorruptDataError(f"cannot read image {path}: {error}") from error
        arr = np.asarray(small, dtype=np.uint8).reshape(size, size, channels)
        out[i] = torch.from_numpy(arr.transpose(2, 0, 1).copy())
    return out


def from_image_folder(
    root: str | os.PathLike[str],
    test_root: str | os.PathLike[str] | None = None,
    size: int = 32,
    channels: int = 3,
    class_names: Sequence[str] | None = None,
) -> Data:
    """A :class:`Data` pool from a folder of images.

    Parameters
    ----------
    root:
        The pool: class sub-folders (labeled) or a flat folder of images (unlabeled).
    test_root:
        Optional labeled test set, with one sub-folder per class.
    size, channels:
        Images are resized to ``size`` x ``size`` with 3 (RGB) or 1 (grayscale) channels.
    class_names:
        The classes, index = class. Required for an unlabeled pool; otherwise the sub-folder
        names, sorted.

    Returns
    -------
    Data
        ``X_train`` is ``uint8`` ``(N, C, size, size)``, normalised per batch to [-1, 1];
        ``paths`` (an attribute) lists the files in pool order.

    Examples
    --------
    ``data = from_image_folder("photos/", class_names=["cat", "dog"])``
    """
    paths, names, found = list_image_folder(root)
    classes = list(class_names) if class_names is not None else found
    if classes is None:
        raise DeepALError(
            f"{root} is an unlabeled folder of images: pass class_names (the classes to label)"
        )
    if found is not None and class_names is not None and set(found) - set(classes):
        extra = sorted(set(found) - set(classes))
        raise DeepALError(f"sub-folders {extra} of {root} are not among class_names {classes}")
    Y, classes = encode_labels(names, len(paths), classes)
    X = decode_images(paths, size, channels)
    X_test = Y_test = None
    if test_root is not None:
        test_paths, test_names, _ = list_image_folder(test_root)
        if test_names is None:
            raise DeepALError(f"the test folder {test_root} needs one sub-folder per class")
        Y_test, _ = encode_labels(test_names, len(test_paths), classes)
        X_test = decode_images(test_paths, size, channels)
    data = Data(X, Y, X_test, Y_test, handler=image_handler((0.5,) * channels, (0.5,) * channels),
                class_names=classes)
    data.paths = paths  # type: ignore[attr-defined]
    return data
