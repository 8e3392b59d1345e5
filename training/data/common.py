"""What every dataset source shares: the dataset table, argument checks, options, errors."""

import dataclasses
import logging
import os
import threading

import numpy as np

from export.errors import DataError
from irmae_keras import paper


logger = logging.getLogger("training.data")  # the package's one logger


DATASETS = tuple(paper.DATASETS)


SPLITS = ("train", "eval", "test")


# The image shape each dataset is read at, and the architecture it trains with by
# default: from the preset table.
IMAGE_SHAPES = {name: paper.dataset_image_shape(name) for name in paper.DATASETS}


ARCHITECTURE_FOR = {name: paper.dataset_architecture(name) for name in paper.DATASETS}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset yields, without loading it.

    Attributes:
        name: str. One of `DATASETS`.
        image_shape: tuple. Default (height, width, channels).
        architecture: str. Model architecture the dataset uses by default.
        splits: tuple of str. Split names accepted by `load_dataset`.
        sizes: dict. Examples per split by default; None where unknown (a folder without
            `data_dir`).
        label_kind: str. "factors" (7 float32 shape factors), "class" (int32 index) or
            "attributes" (40 int32 values in {0, 1}).
        label_shape: tuple. Shape of one label.
        num_classes: int or None. Number of classes for label_kind "class".
        label_names: tuple of str or None. Factor, class or attribute names.
    """

    name: str
    image_shape: tuple
    architecture: str
    splits: tuple
    sizes: dict
    label_kind: str
    label_shape: tuple
    num_classes: int | None
    label_names: tuple | None


class SkippedFiles:
    """Unreadable images left out by `skip_corrupt=True`: which, and why.

    A dataset from `load_dataset` carries one as `dataset.skipped_files`. Files found by the
    check before loading are in it at once; files that fail only while decoding are added
    (and logged) when the pipeline first meets them.
    """

    def __init__(self):
        self._reasons = {}
        self._lock = threading.Lock()

    def add(self, name, reason):
        """Records one skipped file; returns True the first time it is seen.

        Args:
            name: str. Path of the file (or id of the record).
            reason: str. Why it could not be read.

        Returns:
            bool. False when the file had been recorded already.
        """
        with self._lock:
            if name in self._reasons:
                return False
            self._reasons[name] = reason
            return True

    @property
    def count(self):
        """int. Number of files skipped so far."""
        with self._lock:
            return len(self._reasons)

    @property
    def reasons(self):
        """dict. Skipped file → reason, sorted by file name."""
        with self._lock:
            return dict(sorted(self._reasons.items()))


@dataclasses.dataclass(frozen=True)
class Options:
    """The arguments of `load_dataset` that every pipeline shares."""

    batch_size: int
    seed: int
    shuffle: bool
    labels: bool
    image_shape: tuple
    skip_corrupt: bool
    skipped: SkippedFiles


def two_way(split):
    """Maps "test" to "eval" for datasets with only two splits."""
    return "eval" if split == "test" else split


def check_name(name):
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")


def check_split(name, split):
    if split not in SPLITS:
        raise DataError(
            f"unknown split {split!r} for dataset {name!r}; choose one of: {', '.join(SPLITS)}"
        )


def is_positive_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def check_batch_size(batch_size):
    if not is_positive_int(batch_size):
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")


def check_size(size):
    if size is not None and not is_positive_int(size):
        raise DataError(f"size must be a positive integer or None (all), got {size!r}")


def image_shape_for(name, image_shape):
    """Validates `image_shape` for dataset `name`; None gives the dataset's default."""
    default = IMAGE_SHAPES[name]
    if image_shape is None:
        return default
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list)) else None
    if (
        shape is None
        or len(shape) != 3
        or not all(is_positive_int(d) for d in shape)
        or shape[2] not in (1, 3)
    ):
        raise DataError(
            f"image_shape must be (height, width, channels) with positive height and width "
            f"and 1 or 3 channels, got {image_shape!r}; e.g. (64, 64, 3)"
        )
    shape = tuple(int(d) for d in shape)
    if name == "shapes" and shape != default:
        raise DataError(
            f"image_shape {shape} is not available for 'shapes': the shapes are defined on "
            f"{default}; leave image_shape unset"
        )
    if name in ("digits", "mnist") and shape[2] != 1:
        raise DataError(
            f"image_shape {shape} is not available for {name!r}: it is grayscale, use "
            f"(height, width, 1), e.g. {default}"
        )
    return shape


def existing_dir(data_dir, name):
    """Returns `data_dir` as an absolute path, or raises DataError if it is not a directory."""
    path = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if not os.path.isdir(path):
        raise DataError(
            f"data_dir {path!r} for dataset {name!r} does not exist or is not a directory; "
            f"pass --data-dir with an existing directory"
        )
    return path


def describe(error):
    return f"{type(error).__name__}: {error}".replace("\n", " ")


def corrupt_image_message(name, reason, how="delete or replace it"):
    return (
        f"cannot read image {name!r} ({reason}); {how}, or pass skip_corrupt=True "
        f"(--skip-corrupt) to skip unreadable images"
    )
