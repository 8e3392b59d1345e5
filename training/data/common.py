"""What every dataset source shares: the `DataSource` record, argument checks, options, errors."""

import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from collections.abc import Mapping

import numpy as np

from export.errors import DataError
from irmae_keras import paper


logger = logging.getLogger("training.data")  # the package's one logger


SPLITS = ("train", "eval", "test")


@dataclasses.dataclass(frozen=True)
class Labels:
    """What `labels=True` yields per example.

    Attributes:
        kind: str. "factors" (float32 generative factors), "class" (an int32 index) or
            "attributes" (int32 values in {0, 1}).
        shape: tuple. Shape of one label.
        num_classes: int or None. Number of classes for kind "class"; None where unknown.
        names: tuple of str or None. Factor, class or attribute names.
    """

    kind: str
    shape: tuple
    num_classes: int | None = None
    names: tuple | None = None


def class_labels(names):
    """The `Labels` of one int32 class index per example, classes `names` (None: unknown)."""
    names = tuple(names) if names else None
    return Labels("class", (), len(names) if names else None, names)


@dataclasses.dataclass(frozen=True)
class DataSource:
    """One dataset: how to read it and what it is. Each source module declares one, and
    `training.data.registry` holds them; loading, `RunConfig`, evaluation and `--help`
    read every per-dataset fact from it.

    Attributes:
        name: str. The dataset's name (`--dataset`).
        load: callable (split, size, options) → tf.data.Dataset of (images, labels)
            batches, images float32 in [0, 1] at `options.image_shape`. `split` is one of
            `SPLITS`, `size` a positive int or None (all), `options` an `Options`; labels
            are read only when `options.labels` (zeros otherwise). Bad data raises DataError.
        sizes: dict or callable. Examples per split ("train", "eval", optionally "test";
            without "test" the test split is the eval split), or a callable data_dir →
            such a dict for data counted on disk (None values where unknown).
        labels: Labels or callable. What `labels=True` yields, or a callable data_dir →
            Labels where it depends on the data.
        architecture: str. The architecture it trains with by default (an
            `irmae_keras.paper.IMAGE_SHAPES` key): its image shape is the default.
        fits: tuple of str. The architectures whose images it can be read as. Defaults to
            `(architecture,)`.
        channels: tuple of int. The channel counts `image_shape` may have. Defaults to (1, 3).
        resizable: bool. Whether `image_shape` may differ from the architecture's.
            Defaults to True.
        needs_data_dir: bool. The data is whatever directory `data_dir` names: a run needs
            `--data-dir`, and the directory is part of its default name. Defaults to False.
        fid_features: str. FID's default feature extractor, "domain" (trained offline on
            the data) or "inception". Defaults to "domain".
        intrinsic_dimension: int or None. The data's known intrinsic dimension.
        check_images: callable or None. config → None: decodes every image file a run
            reads, raising DataError on the first that fails; None where there are no
            files to decode.
    """

    name: str
    load: Callable
    sizes: Mapping | Callable
    labels: Labels | Callable
    architecture: str
    fits: tuple = ()
    channels: tuple = (1, 3)
    resizable: bool = True
    needs_data_dir: bool = False
    fid_features: str = "domain"
    intrinsic_dimension: int | None = None
    check_images: Callable | None = None

    def __post_init__(self):
        if not self.fits:
            object.__setattr__(self, "fits", (self.architecture,))
        unknown = [a for a in (self.architecture, *self.fits) if a not in paper.IMAGE_SHAPES]
        if unknown or self.architecture not in self.fits:
            raise ValueError(
                f"dataset {self.name!r}: architecture {self.architecture!r} must be one of its "
                f"fits {self.fits}, each one of {', '.join(paper.IMAGE_SHAPES)}"
            )

    @property
    def image_shape(self):
        """tuple. (height, width, channels) it is read at by default: its architecture's."""
        return paper.IMAGE_SHAPES[self.architecture]

    def split_sizes(self, data_dir=None):
        """dict. Examples in each of `SPLITS` by default; None where unknown."""
        per_split = self.sizes(data_dir) if callable(self.sizes) else self.sizes
        return {split: per_split[split if split in per_split else two_way(split)] for split in SPLITS}

    def label_description(self, data_dir=None):
        """Labels. What `labels=True` yields for the data in `data_dir`."""
        return self.labels(data_dir) if callable(self.labels) else self.labels


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset yields, without loading it.

    Attributes:
        name: str. A registered dataset (`DATASETS`).
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
    data_dir: str | None = None


def two_way(split):
    """Maps "test" to "eval" for datasets with only two splits."""
    return "eval" if split == "test" else split


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


def image_shape_for(source, image_shape):
    """Validates `image_shape` for the `DataSource` `source`; None gives its default."""
    default = source.image_shape
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
    if not source.resizable and shape != default:
        raise DataError(
            f"image_shape {shape} is not available for {source.name!r}: its images are defined "
            f"on {default}; leave image_shape unset"
        )
    if shape[2] not in source.channels:
        colour = "grayscale" if source.channels == (1,) else "colour"
        raise DataError(
            f"image_shape {shape} is not available for {source.name!r}: it is {colour}, use "
            f"(height, width, {source.channels[0]}), e.g. {default}"
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
