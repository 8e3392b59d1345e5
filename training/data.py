"""Datasets for IRMAE experiments as tf.data pipelines: float32 images in [0, 1], NHWC.

Five datasets, one entry point:

    images = load_dataset("shapes", "train", batch_size=32)
    images, labels = next(iter(load_dataset("digits", "eval", labels=True)))

- `shapes`: the paper's synthetic set (one filled circle or square per 32×32 RGB image),
  rendered per batch from 7 stored factors.
- `digits`: scikit-learn's 1 797 bundled 8×8 digits, resized to 32×32 (works offline).
- `mnist`: tensorflow-datasets `mnist`, 28×28 resized to 32×32.
- `celeb_a`: the official CelebA files in `data_dir`, or tensorflow-datasets `celeb_a`.
- `folder`: any directory tree of images.

Every user-facing problem (missing or corrupt data, bad arguments) raises
`export.errors.DataError` with one line saying what, where and how to fix it. See
docs/data.md for the rules in full.
"""

import dataclasses
import hashlib
import io
import logging
import os
import re
import socket
import threading
import urllib.parse
import urllib.request

import numpy as np
import tensorflow as tf
from PIL import Image

from export.errors import DataError
from irmae_keras import presets

logger = logging.getLogger(__name__)

DATASETS = tuple(presets.DATASETS)
SPLITS = ("train", "eval", "test")
# The image shape each dataset is read at, and the architecture it trains with by
# default: from the preset table.
IMAGE_SHAPES = {name: presets.dataset_image_shape(name) for name in presets.DATASETS}
ARCHITECTURE_FOR = {name: presets.dataset_architecture(name) for name in presets.DATASETS}

SHAPES_FACTORS = ("type", "size", "r", "g", "b", "x", "y")
SHAPES_SIZES = {"train": 50_000, "eval": 10_000}
SHAPES_TYPES = ("circle", "square")
SHAPES_SIZE_RANGE = (3, 8)
SHAPES_POSITION_RANGE = (8, 24)
# The random stream of each split: train and eval never share images for one seed.
SHAPES_STREAMS = {"train": 0, "eval": 1}

DIGITS_EVAL_EVERY = 5
MNIST_SIZES = {"train": 60_000, "eval": 10_000}
CELEB_A_SIZES = {"train": 162_770, "eval": 19_867, "test": 19_962}
CELEB_A_CROP = 148
# The 40 attributes in the order of the official list_attr_celeba.txt.
CELEB_A_ATTRIBUTES = tuple("""
    5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose
    Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee
    Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes
    No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling
    Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace
    Wearing_Necktie Young
    """.split())
# Official partition codes in list_eval_partition.txt, and the tfds split of each of our splits.
CELEB_A_PARTITIONS = {"train": 0, "eval": 1, "test": 2}
TFDS_SPLITS = {
    "mnist": {"train": "train", "eval": "test", "test": "test"},
    "celeb_a": {"train": "train", "eval": "validation", "test": "test"},
}
# Where tfds downloads each dataset from: probed before a download so offline fails fast.
DOWNLOAD_HOSTS = {"mnist": "storage.googleapis.com", "celeb_a": "drive.google.com"}
PROBE_TIMEOUT_S = 3.0

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
FOLDER_EVAL_FRACTION = 0.1
# Decoded uint8 images up to this many bytes stay in memory after the first epoch.
CACHE_LIMIT_BYTES = 3 * 1024**3
# How many encoded images one Pillow call decodes: amortises the per-call overhead.
DECODE_BATCH = 64
# Shuffle buffer for datasets streamed from tfds files (whole-dataset shuffles elsewhere).
STREAM_SHUFFLE_BUFFER = 10_000
# Rows per rendering call in generate_shapes: bounds the temporaries, keeps ops vectorised.
RENDER_CHUNK = 8192


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


# ---------------------------------------------------------------------------------------------
# Arguments


@dataclasses.dataclass(frozen=True)
class _Options:
    """The arguments of `load_dataset` that every pipeline shares."""

    batch_size: int
    seed: int
    shuffle: bool
    labels: bool
    image_shape: tuple
    skip_corrupt: bool
    skipped: SkippedFiles


def _two_way(split):
    """Maps "test" to "eval" for datasets with only two splits."""
    return "eval" if split == "test" else split


def _check_name(name):
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")


def _check_split(name, split):
    if split not in SPLITS:
        raise DataError(
            f"unknown split {split!r} for dataset {name!r}; choose one of: {', '.join(SPLITS)}"
        )


def _is_positive_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _check_batch_size(batch_size):
    if not _is_positive_int(batch_size):
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")


def _check_size(size):
    if size is not None and not _is_positive_int(size):
        raise DataError(f"size must be a positive integer or None (all), got {size!r}")


def _image_shape_for(name, image_shape):
    """Validates `image_shape` for dataset `name`; None gives the dataset's default."""
    default = IMAGE_SHAPES[name]
    if image_shape is None:
        return default
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list)) else None
    if (
        shape is None
        or len(shape) != 3
        or not all(_is_positive_int(d) for d in shape)
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


def _existing_dir(data_dir, name):
    """Returns `data_dir` as an absolute path, or raises DataError if it is not a directory."""
    path = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if not os.path.isdir(path):
        raise DataError(
            f"data_dir {path!r} for dataset {name!r} does not exist or is not a directory; "
            f"pass --data-dir with an existing directory"
        )
    return path


# ---------------------------------------------------------------------------------------------
# Shapes


def _shapes_rng(seed, split):
    _check_split("shapes", split)
    stream = SHAPES_STREAMS["train" if split == "train" else "eval"]
    return np.random.default_rng([int(seed), stream])


def _uniform_integers(uniform, low, high):
    """Maps uniform [0, 1) floats to integers uniform in low..high (inclusive)."""
    count = high - low + 1
    return low + np.minimum(np.floor(uniform * count), count - 1)


def sample_shapes_factors(n, seed=0, split="train"):
    """Draws the factors of `n` shapes images.

    Row i depends only on (seed, split, i): the first k rows are the same for every n ≥ k.

    Args:
        n: int. Number of images.
        seed: int. Random seed. Defaults to 0.
        split: str. "train", or "eval"/"test" (one stream, distinct from train's).
            Defaults to "train".

    Returns:
        float32 array (n, 7), columns `SHAPES_FACTORS`: type (0 circle, 1 square), size
        (integer 3..8), r, g, b (uniform in [0, 1)), x and y (integers 8..24).
    """
    uniform = _shapes_rng(seed, split).random((int(n), len(SHAPES_FACTORS)))
    factors = np.empty_like(uniform, dtype=np.float32)
    factors[:, 0] = _uniform_integers(uniform[:, 0], 0, len(SHAPES_TYPES) - 1)
    factors[:, 1] = _uniform_integers(uniform[:, 1], *SHAPES_SIZE_RANGE)
    # float64 → float32 can round up to 1.0; the colours stay in [0, 1).
    largest_below_one = np.nextafter(np.float32(1), np.float32(0))
    factors[:, 2:5] = np.minimum(uniform[:, 2:5].astype(np.float32), largest_below_one)
    factors[:, 5] = _uniform_integers(uniform[:, 5], *SHAPES_POSITION_RANGE)
    factors[:, 6] = _uniform_integers(uniform[:, 6], *SHAPES_POSITION_RANGE)
    return factors


def render_shapes(factors, image_size=32):
    """Renders shapes images from their factors with vectorised TF ops.

    x is the column and y the row of a pixel, (0, 0) the top-left pixel. A circle covers the
    pixels with (col − x)² + (row − y)² ≤ size²; a square covers x ≤ col ≤ x + size and
    y ≤ row ≤ y + size (both corners inclusive, clipped to the image). Background is black.

    Args:
        factors: float32 tensor or array (batch, 7), columns `SHAPES_FACTORS`.
        image_size: int. Height and width. Defaults to 32.

    Returns:
        float32 tensor (batch, image_size, image_size, 3) in [0, 1].
    """
    factors = tf.convert_to_tensor(factors, tf.float32)
    kind, size, x, y = (factors[:, i, None, None] for i in (0, 1, 5, 6))
    colour = factors[:, None, None, 2:5]
    coordinates = tf.range(image_size, dtype=tf.float32)
    rows, cols = coordinates[None, :, None], coordinates[None, None, :]
    circle = tf.square(cols - x) + tf.square(rows - y) <= tf.square(size)
    # Row and column tests stay (batch, 1, n) and (batch, n, 1) until one broadcast `&`.
    square = ((cols >= x) & (cols <= x + size)) & ((rows >= y) & (rows <= y + size))
    inside = tf.where(kind < 0.5, circle, square)
    return tf.cast(inside, tf.float32)[..., None] * colour


def generate_shapes(n, seed=0, split="train"):
    """Generates `n` shapes images and their factors as numpy arrays.

    The same images as `load_dataset("shapes", split, seed=seed, size=n, shuffle=False)`.

    Args:
        n: int. Number of images.
        seed: int. Random seed. Defaults to 0.
        split: str. "train", or "eval"/"test". Defaults to "train".

    Returns:
        (images, factors): float32 arrays (n, 32, 32, 3) in [0, 1] and (n, 7).
    """
    factors = sample_shapes_factors(n, seed, split)
    images = np.empty((len(factors),) + IMAGE_SHAPES["shapes"], np.float32)
    for start in range(0, len(factors), RENDER_CHUNK):
        chunk = factors[start : start + RENDER_CHUNK]
        images[start : start + len(chunk)] = render_shapes(chunk).numpy()
    return images, factors


def _shapes_dataset(split, size, options):
    factors = sample_shapes_factors(size or SHAPES_SIZES[_two_way(split)], options.seed, split)
    source = tf.data.Dataset.from_tensor_slices(factors)
    return _in_memory_pipeline(
        source, len(factors), lambda factors: (render_shapes(factors), factors), options
    )


# ---------------------------------------------------------------------------------------------
# Pipelines


def _finish(dataset, options, shard_by_data=True):
    """Drops labels unless asked for, sets sharding, and prefetches."""
    if not options.labels:
        dataset = dataset.map(lambda images, labels: images, num_parallel_calls=tf.data.AUTOTUNE)
    if shard_by_data:
        # In-memory sources have no files to shard: each worker keeps every k-th batch.
        tf_options = tf.data.Options()
        tf_options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        dataset = dataset.with_options(tf_options)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _shuffled(dataset, options, buffer_size):
    if not options.shuffle:
        return dataset
    return dataset.shuffle(buffer_size, seed=options.seed, reshuffle_each_iteration=True)


def _in_memory_pipeline(source, n, batch_transform, options):
    """Caches small raw examples, shuffles them whole, batches, then transforms each batch.

    Args:
        source: tf.data.Dataset of raw examples.
        n: int. Number of examples (the shuffle buffer: a full shuffle).
        batch_transform: callable taking the components of one batch of raw examples and
            returning (images float32 in [0, 1], labels).
        options: _Options.

    Returns:
        tf.data.Dataset.
    """
    dataset = _shuffled(source.cache(), options, max(n, 1))
    dataset = dataset.batch(options.batch_size)
    dataset = dataset.map(
        lambda *batch: batch_transform(*batch), num_parallel_calls=tf.data.AUTOTUNE
    )
    return _finish(dataset, options)


def _decoded_pipeline(items, n, decode, options, shuffle_buffer=None, shard_by_data=True):
    """Decodes encoded images with Pillow, caches them when they fit, shuffles and batches.

    Args:
        items: tf.data.Dataset of (source, name, label): a file path or encoded bytes, the
            name used in error messages, and the label.
        n: int. Number of items.
        decode: callable (sources, names) → (uint8 images, ok flags) on one batch of items,
            as built by `_pillow_decoder`.
        options: _Options.
        shuffle_buffer: int or None. Buffer for shuffling items before decoding; None is a
            full shuffle.
        shard_by_data: bool. Whether to set the DATA auto-shard policy.

    Returns:
        tf.data.Dataset.
    """
    height, width, channels = options.image_shape
    cache = n * height * width * channels <= CACHE_LIMIT_BYTES
    if not cache:
        # Shuffling the encoded items is cheap; decoded images would fill the buffer.
        items = _shuffled(items, options, shuffle_buffer or max(n, 1))
    dataset = items.batch(DECODE_BATCH).map(
        lambda sources, names, labels: (*decode(sources, names), labels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    dataset = dataset.unbatch()
    if options.skip_corrupt:
        dataset = dataset.filter(lambda image, ok, label: ok)
    dataset = dataset.map(lambda image, ok, label: (image, label))
    if cache:
        dataset = _shuffled(dataset.cache(), options, max(n, 1))
    dataset = dataset.batch(options.batch_size).map(
        lambda images, labels: (tf.cast(images, tf.float32) / 255.0, labels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return _finish(dataset, options, shard_by_data)


# ---------------------------------------------------------------------------------------------
# Decoding image files (Pillow: the same pixels for every source, and errors that name files)


def _to_8_bit(image):
    """Scales 16/32-bit integer grayscale (e.g. 16-bit PNG) to 8 bits instead of clipping."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        values = np.asarray(image, np.float64) / 257.0
        return Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), "L")
    if image.mode in ("P", "PA"):
        # Palettes may carry transparency; going through RGBA keeps Pillow from warning.
        return image.convert("RGBA")
    return image


def _center_crop_box(image_size, aspect, region=None):
    """Largest centred (left, top, right, bottom) pixel box of width/height ≈ `aspect`.

    Args:
        image_size: (width, height) of the image.
        aspect: float. Target width / height.
        region: int or None. Side of a centred square the box must stay inside (CelebA's 148).

    Returns:
        tuple of 4 ints, a box for `PIL.Image.crop`.
    """
    width, height = image_size
    if region is not None:
        width, height = min(width, region), min(height, region)
    box_width = max(1, round(min(width, height * aspect)))
    box_height = max(1, round(min(height, width / aspect)))
    # Offsets rounded like torchvision's CenterCrop, so CelebA crops match the reference.
    left = round((image_size[0] - box_width) / 2)
    top = round((image_size[1] - box_height) / 2)
    return (left, top, left + box_width, top + box_height)


def decode_image(source, image_shape, crop=None):
    """Reads one image, center-crops it to the target aspect ratio and resizes it.

    GIFs give their first frame; alpha is dropped; colour or grayscale is converted to the
    channels of `image_shape`. The resize is Pillow's bilinear, antialiased when shrinking.

    Args:
        source: str path, or bytes of an encoded image.
        image_shape: (height, width, channels), channels 1 or 3.
        crop: int or None. Crop inside the centred crop×crop square first (CelebA: 148).

    Returns:
        uint8 array of `image_shape`.

    Raises:
        OSError, SyntaxError, ValueError, ...: whatever Pillow raises on a corrupt file.
    """
    height, width, channels = image_shape
    opened = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    with opened as image:
        image = _to_8_bit(image).convert("RGB" if channels == 3 else "L")
        # Crop first: resizing with a box would blend pixels from outside it into the edges.
        image = image.crop(_center_crop_box(image.size, width / height, crop))
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(image, np.uint8).reshape(image_shape)


def _describe(error):
    return f"{type(error).__name__}: {error}".replace("\n", " ")


def _corrupt_image_message(name, reason, how="delete or replace it"):
    return (
        f"cannot read image {name!r} ({reason}); {how}, or pass skip_corrupt=True "
        f"(--skip-corrupt) to skip unreadable images"
    )


def _pillow_decoder(options, crop, sources_are_paths):
    """Builds the batch decoder of `_decoded_pipeline` (a numpy_function inside tf.data).

    Args:
        options: _Options. Gives image_shape; skip_corrupt says whether to skip unreadable
            images (else raise DataError naming the file); skipped records them.
        crop: int or None. See `decode_image`.
        sources_are_paths: bool. Sources are file paths (else encoded bytes).

    Returns:
        callable (sources, names) → (uint8 images (batch, *image_shape), bool ok (batch,)).
    """

    image_shape = options.image_shape

    def decode_batch(sources, names):
        images = np.zeros((len(sources),) + tuple(image_shape), np.uint8)
        ok = np.ones(len(sources), bool)
        for i, (source, name) in enumerate(zip(sources, names)):
            try:
                images[i] = decode_image(
                    os.fsdecode(source) if sources_are_paths else source, image_shape, crop
                )
            # Pillow raises many exception types on malformed data; each means "unreadable".
            except Exception as error:  # pylint: disable=broad-except
                name, reason = os.fsdecode(name), _describe(error)
                if not options.skip_corrupt:
                    raise DataError(_corrupt_image_message(name, reason)) from error
                ok[i] = False
                if options.skipped.add(name, reason):
                    logger.warning(
                        "skipped unreadable image %r (%s); %d skipped so far",
                        name,
                        reason,
                        options.skipped.count,
                    )
        return images, ok

    def decode(sources, names):
        # Stateless: the same sources always decode to the same images (skips only log).
        images, ok = tf.numpy_function(
            decode_batch, [sources, names], [tf.uint8, tf.bool], stateful=False
        )
        return tf.ensure_shape(images, (None,) + tuple(image_shape)), tf.ensure_shape(ok, (None,))

    return decode


def data_error_from(error):
    """The DataError inside a tf.data error raised while iterating, if there is one.

    An unreadable image met during iteration surfaces as a `tf.errors.OpError` whose message
    contains "DataError: <message>". CLIs use this to print that one line.

    Args:
        error: Exception.

    Returns:
        DataError or None.
    """
    match = re.search(r"DataError: ([^\n]+)", str(error))
    return DataError(match.group(1)) if match else None


def check_image_files(paths):
    """Finds unreadable images with Pillow's header and integrity check (no full decode).

    Cheap (≈30 000 files/s here): catches missing files, non-images, empty files and
    truncated PNGs. Truncated JPEGs pass it and are caught while decoding.

    Args:
        paths: sequence of str.

    Returns:
        dict. Unreadable path → reason, in the order of `paths`.
    """
    unreadable = {}
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        # Pillow raises many exception types on malformed data; each means "unreadable".
        except Exception as error:  # pylint: disable=broad-except
            unreadable[path] = _describe(error)
    return unreadable


def check_every_image(config):
    """Decodes every image file a run would read (train and eval), in full, and
    raises DataError on the first that fails (unless the run skips corrupt files).

    Slower than `check_image_files` (≈1 ms per image) but it also catches the
    truncated JPEGs that only fail mid-epoch: `--overwrite` calls it before the old
    run is deleted. Datasets that are not image files need nothing.
    """
    if config.dataset != "folder" or config.skip_corrupt:
        return
    root, files = _folder_files(config.data_dir)
    for split, size in (("train", config.train_size), ("eval", config.eval_size)):
        for relative in split_folder_files(files)[split][:size]:
            path = os.path.join(root, *relative.split("/"))
            try:
                with Image.open(path) as image:
                    image.load()
            # Pillow raises many exception types on malformed data; each means "unreadable".
            except Exception as error:  # pylint: disable=broad-except
                raise DataError(_corrupt_image_message(path, _describe(error))) from None


def _readable_files(paths, labels, where, options):
    """Drops (skip_corrupt) or refuses (DataError) files that `check_image_files` rejects."""
    unreadable = check_image_files(paths)
    if not unreadable:
        return paths, labels
    first, reason = next(iter(unreadable.items()))
    if not options.skip_corrupt:
        how = f"{len(unreadable)} of {len(paths)} images in {where} are unreadable; fix them"
        raise DataError(_corrupt_image_message(first, reason, how))
    for path, reason in unreadable.items():
        options.skipped.add(path, reason)
    logger.warning(
        "skipped %d of %d images in %s that cannot be read (first: %r, %s)",
        len(unreadable),
        len(paths),
        where,
        first,
        reason,
    )
    keep = [i for i, path in enumerate(paths) if path not in unreadable]
    if not keep:
        raise DataError(f"every image in {where} is unreadable (first: {first!r}, {reason})")
    return [paths[i] for i in keep], labels[keep]


def _file_pipeline(paths, labels, where, crop, options):
    """The dataset of a list of image files: checked, decoded, cached when small."""
    paths, labels = _readable_files(list(paths), np.asarray(labels), where, options)
    items = tf.data.Dataset.from_tensor_slices((paths, paths, labels))
    decode = _pillow_decoder(options, crop, sources_are_paths=True)
    return _decoded_pipeline(items, len(paths), decode, options)


# ---------------------------------------------------------------------------------------------
# Digits (scikit-learn)


def _digits_split(targets):
    """Eval = every fifth image of each class in file order (positions 0, 5, 10, …)."""
    is_eval = np.zeros(len(targets), bool)
    for digit in np.unique(targets):
        is_eval[np.flatnonzero(targets == digit)[::DIGITS_EVAL_EVERY]] = True
    return {"train": np.flatnonzero(~is_eval), "eval": np.flatnonzero(is_eval)}


def _digits_arrays(split):
    """Digits of one split: float32 (n, 8, 8, 1) in [0, 1] and int32 labels, in file order."""
    from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel

    digits = load_digits()
    indices = _digits_split(digits.target)[_two_way(split)]
    images = (digits.images[indices] / 16.0).astype(np.float32)[..., None]
    return images, digits.target[indices].astype(np.int32)


def _resized_batch(images, labels, scale, image_shape):
    """Scales a batch to [0, 1] and resizes it bilinearly to `image_shape`."""
    images = tf.cast(images, tf.float32) / scale
    images = tf.image.resize(images, image_shape[:2], method="bilinear")
    return tf.clip_by_value(images, 0.0, 1.0), labels


def _digits_dataset(split, size, options):
    images, labels = _digits_arrays(split)
    images, labels = images[:size], labels[:size]
    source = tf.data.Dataset.from_tensor_slices((images, labels))
    return _in_memory_pipeline(
        source,
        len(images),
        lambda images, labels: _resized_batch(images, labels, 1.0, options.image_shape),
        options,
    )


# ---------------------------------------------------------------------------------------------
# tensorflow-datasets (mnist, celeb_a): fail fast offline instead of retrying for minutes


def _proxy_for(host):
    """(host, port) of the HTTPS proxy the download would go through, or None."""
    proxy = urllib.request.getproxies().get("https")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return (parsed.hostname, parsed.port or 8080) if parsed.hostname else None


def download_host_reachable(host, timeout_s=PROBE_TIMEOUT_S):
    """Whether a TCP connection to `host`:443 (or to the HTTPS proxy) opens within the timeout.

    The lookup and connection run in a daemon thread, so a hanging DNS resolver cannot hold
    the caller longer than `timeout_s`.

    Args:
        host: str. Host name.
        timeout_s: float. Seconds to wait at most. Defaults to `PROBE_TIMEOUT_S`.

    Returns:
        bool.
    """
    address = _proxy_for(host) or (host, 443)
    outcome = {}
    finished = threading.Event()

    def connect():
        try:
            socket.create_connection(address, timeout=timeout_s).close()
            outcome["reached"] = True
        except OSError:
            outcome["reached"] = False
        finally:
            finished.set()

    threading.Thread(target=connect, daemon=True, name=f"probe-{host}").start()
    # A failed lookup returns at once; only a hanging one waits out the timeout.
    finished.wait(timeout_s)
    return outcome.get("reached", False)


def _not_prepared_message(name, looked_in, why):
    how = (
        f'on a connected machine run `python -c "import tensorflow_datasets as tfds; '
        f"tfds.load('{name}')\"`, copy its ~/tensorflow_datasets folder (the one holding "
        f"{name}/) here and pass it as --data-dir"
    )
    if name == "celeb_a":
        how += (
            ", or pass --data-dir with the official CelebA files (img_align_celeba/ and "
            "list_eval_partition.txt)"
        )
    return f"{name} is not prepared in {looked_in!r} and {why}; {how}, or use --dataset folder"


def _prepared_tfds_builder(name, data_dir):
    """A tfds builder whose data is on disk, downloading it only when the host is reachable."""
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    host = DOWNLOAD_HOSTS[name]
    looked_in = os.fspath(builder.data_dir)
    if not download_host_reachable(host):
        raise DataError(_not_prepared_message(name, looked_in, f"{host} cannot be reached"))
    try:
        builder.download_and_prepare()
    # Downloads fail in many ways (quota, HTTP, disk); each gets the same advice.
    except Exception as error:  # pylint: disable=broad-except
        why = f"downloading it failed ({_describe(error)[:200]})"
        raise DataError(_not_prepared_message(name, looked_in, why)) from error
    return builder


def _capped(dataset, size, name):
    """Takes the first `size` examples; returns (dataset, number of examples or its bound)."""
    if size is not None:
        dataset = dataset.take(size)
    n = int(dataset.cardinality())
    if n >= 0:
        return dataset, n
    if size is not None:
        return dataset, size
    raise DataError(f"cannot count the examples of {name}; pass size=N (--train-size / --eval-size N)")


def _mnist_dataset(split, size, data_dir, options):
    builder = _prepared_tfds_builder("mnist", data_dir)
    examples = builder.as_dataset(split=TFDS_SPLITS["mnist"][split], shuffle_files=False)
    source = examples.map(
        lambda example: (example["image"], tf.cast(example["label"], tf.int32)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    source, n = _capped(source, size, "mnist")
    return _in_memory_pipeline(
        source,
        n,
        lambda images, labels: _resized_batch(images, labels, 255.0, options.image_shape),
        options,
    )


def _celeb_a_attribute_vector(attributes):
    return tf.stack([tf.cast(attributes[a], tf.int32) for a in CELEB_A_ATTRIBUTES])


def _celeb_a_tfds_dataset(split, size, data_dir, options):
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    builder = _prepared_tfds_builder("celeb_a", data_dir)
    examples = builder.as_dataset(
        split=TFDS_SPLITS["celeb_a"][split],
        shuffle_files=options.shuffle,
        read_config=tfds.ReadConfig(shuffle_seed=options.seed, add_tfds_id=True),
        # JPEG bytes are decoded by Pillow after the shuffle, as for the local files.
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    items = examples.map(
        lambda ex: (ex["image"], ex["tfds_id"], _celeb_a_attribute_vector(ex["attributes"])),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    items, n = _capped(items, size, "celeb_a")
    decode = _pillow_decoder(options, CELEB_A_CROP, sources_are_paths=False)
    # tfds shards are files: leave auto-sharding to tf.data (it shards by file).
    return _decoded_pipeline(
        items, n, decode, options, shuffle_buffer=STREAM_SHUFFLE_BUFFER, shard_by_data=False
    )


# ---------------------------------------------------------------------------------------------
# CelebA from the official files


# Sub-folder of each file in the official download (Img/, Eval/, Anno/); flat layouts work too.
CELEB_A_OFFICIAL_FOLDERS = {
    "img_align_celeba": "Img",
    "list_eval_partition.txt": "Eval",
    "list_attr_celeba.txt": "Anno",
}


def _celeb_a_path(data_dir, file_name):
    """data_dir/file_name, else data_dir/<official folder>/file_name; None if neither exists."""
    for folder in ("", CELEB_A_OFFICIAL_FOLDERS[file_name]):
        path = os.path.join(data_dir, folder, file_name)
        if os.path.exists(path):
            return path
    return None


def _celeb_a_images_dir(data_dir):
    """The folder of aligned images, or None when data_dir has none."""
    path = _celeb_a_path(data_dir, "img_align_celeba")
    return path if path and os.path.isdir(path) else None


def read_celeb_a_partition(path):
    """Reads list_eval_partition.txt: lines such as `000001.jpg 0` (0 train, 1 valid, 2 test).

    Args:
        path: str. The partition file.

    Returns:
        dict. Split ("train", "eval", "test") → sorted list of file names.
    """
    code_to_split = {str(code): split for split, code in CELEB_A_PARTITIONS.items()}
    files = {split: [] for split in CELEB_A_PARTITIONS}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in code_to_split:
                raise DataError(
                    f"{path}:{number}: expected '<file name> <0|1|2>', got {line.strip()!r}; "
                    f"use the official list_eval_partition.txt"
                )
            files[code_to_split[fields[1]]].append(fields[0])
    return {split: sorted(names) for split, names in files.items()}


def read_celeb_a_attributes(path):
    """Reads list_attr_celeba.txt: a count line, the 40 names, then `file ±1 … ±1` rows.

    Args:
        path: str. The attribute file.

    Returns:
        dict. File name → int32 array (40,) of {0, 1}, columns in `CELEB_A_ATTRIBUTES` order.
    """
    with open(path, encoding="utf-8") as handle:
        lines = [line.split() for line in handle if line.strip()]
    header = lines[1] if len(lines) > 1 else []
    missing = sorted(set(CELEB_A_ATTRIBUTES) - set(header))
    if missing:
        raise DataError(
            f"{path}: the second line must name the 40 CelebA attributes; missing "
            f"{', '.join(missing[:3])}; use the official list_attr_celeba.txt"
        )
    columns = [header.index(name) + 1 for name in CELEB_A_ATTRIBUTES]
    attributes = {}
    for number, row in enumerate(lines[2:], start=3):
        if len(row) != len(header) + 1:
            raise DataError(
                f"{path}:{number}: expected a file name and {len(header)} values of -1/1; "
                f"use the official list_attr_celeba.txt"
            )
        attributes[row[0]] = (np.array([row[c] for c in columns], np.int32) > 0).astype(np.int32)
    return attributes


def _celeb_a_labels(data_dir, names, labels):
    """Attribute labels of `names` (zeros when not asked for)."""
    if not labels:
        return np.zeros((len(names), len(CELEB_A_ATTRIBUTES)), np.int32)
    path = _celeb_a_path(data_dir, "list_attr_celeba.txt")
    if path is None:
        raise DataError(
            f"labels=True needs list_attr_celeba.txt in {data_dir!r} (or its Anno/); copy the "
            f"official attribute file there, or load without labels"
        )
    attributes = read_celeb_a_attributes(path)
    unlisted = [name for name in names if name not in attributes]
    if unlisted:
        raise DataError(
            f"{path} has no attributes for {len(unlisted)} images (first: {unlisted[0]}); "
            f"use the attribute file that matches the images"
        )
    return np.stack([attributes[name] for name in names])


def _celeb_a_folder_dataset(split, size, data_dir, images_dir, options):
    partition = _celeb_a_path(data_dir, "list_eval_partition.txt")
    if partition is None:
        raise DataError(
            f"CelebA in {data_dir!r} has {os.path.basename(images_dir)}/ but no "
            f"list_eval_partition.txt (lines like '000001.jpg 0'); copy the official "
            f"partition file into {data_dir!r}"
        )
    names = read_celeb_a_partition(partition)[split][:size]
    if not names:
        raise DataError(f"{partition} lists no images for split {split!r}; use the official file")
    labels = _celeb_a_labels(data_dir, names, options.labels)
    paths = [os.path.join(images_dir, name) for name in names]
    return _file_pipeline(paths, labels, repr(images_dir), CELEB_A_CROP, options)


def _celeb_a_dataset(split, size, data_dir, options):
    """CelebA from the official files when data_dir holds them, else from tfds."""
    if data_dir is not None:
        data_dir = _existing_dir(data_dir, "celeb_a")
        images_dir = _celeb_a_images_dir(data_dir)
        if images_dir is not None:
            return _celeb_a_folder_dataset(split, size, data_dir, images_dir, options)
    return _celeb_a_tfds_dataset(split, size, data_dir, options)


# ---------------------------------------------------------------------------------------------
# Folder of images


def list_image_files(root):
    """Image files under `root`, recursively, as sorted relative POSIX paths.

    Hidden files and directories (names starting with ".") are left out.

    Args:
        root: str. Directory.

    Returns:
        list of str.
    """
    found = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if not d.startswith(".")]
        relative = os.path.relpath(directory, root)
        for file in files:
            if not file.startswith(".") and file.lower().endswith(IMAGE_EXTENSIONS):
                path = file if relative == "." else os.path.join(relative, file)
                found.append(path.replace(os.sep, "/"))
    return sorted(found)


def _stable_fraction(relative_path):
    """A number in [0, 1) fixed by the path alone (SHA-256), the same on every machine."""
    digest = hashlib.sha256(relative_path.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_folder_files(relative_paths):
    """Splits files by a stable hash of their relative path: ≈90 % train, ≈10 % eval.

    A file is eval when `_stable_fraction(path) < FOLDER_EVAL_FRACTION`, so adding files never
    moves others. With 2 or more files, each split gets at least one: the lowest-scoring
    train file moves to eval, or the highest-scoring eval file moves to train.

    Args:
        relative_paths: sequence of str.

    Returns:
        dict. "train" and "eval" → sorted lists of relative paths.
    """
    scores = {path: _stable_fraction(path) for path in relative_paths}
    splits = {"train": [], "eval": []}
    for path, score in scores.items():
        splits["eval" if score < FOLDER_EVAL_FRACTION else "train"].append(path)
    if len(scores) >= 2 and not splits["eval"]:
        splits["eval"].append(
            splits["train"].pop(int(np.argmin([scores[p] for p in splits["train"]])))
        )
    if len(scores) >= 2 and not splits["train"]:
        splits["train"].append(
            splits["eval"].pop(int(np.argmax([scores[p] for p in splits["eval"]])))
        )
    return {split: sorted(paths) for split, paths in splits.items()}


def folder_classes(relative_paths):
    """Class names: the sorted top-level sub-directories that hold images."""
    return sorted({path.split("/")[0] for path in relative_paths if "/" in path})


def _folder_labels(root, relative_paths, all_paths):
    """int32 class index of each path, the index of its top-level sub-directory."""
    classes = folder_classes(all_paths)
    if not classes:
        raise DataError(
            f"labels=True needs one sub-directory per class under {root!r} (e.g. "
            f"{root}/cats/1.jpg); the images there are not in sub-directories"
        )
    at_root = [path for path in all_paths if "/" not in path]
    if at_root:
        raise DataError(
            f"labels=True needs every image inside a class sub-directory, but {len(at_root)} "
            f"are directly in {root!r} (first: {at_root[0]}); move them into a class folder"
        )
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index[path.split("/")[0]] for path in relative_paths], np.int32)


def _folder_files(data_dir):
    """(root, relative image paths) of a folder dataset, or DataError when there are none."""
    if data_dir is None:
        raise DataError(
            "the folder dataset needs data_dir: pass --data-dir DIR with a directory of images "
            f"({', '.join(IMAGE_EXTENSIONS)}; sub-directories are searched)"
        )
    root = _existing_dir(data_dir, "folder")
    files = list_image_files(root)
    if files:
        return root, files
    others = sum(len(names) for _, _, names in os.walk(root))
    what = f"has {others} files but no image" if others else "is empty"
    raise DataError(
        f"{root!r} {what}; put {', '.join(IMAGE_EXTENSIONS)} files there (sub-directories are "
        f"searched) or pass another --data-dir"
    )


def _folder_dataset(split, size, data_dir, options):
    root, files = _folder_files(data_dir)
    chosen = split_folder_files(files)[_two_way(split)][:size]
    if not chosen:
        raise DataError(
            f"{root!r} has only {len(files)} image, so its {_two_way(split)} split is empty; "
            f"add images (each split needs one, so at least 2)"
        )
    if options.labels:
        labels = _folder_labels(root, chosen, files)
    else:
        labels = np.zeros(len(chosen), np.int32)
    paths = [os.path.join(root, *path.split("/")) for path in chosen]
    return _file_pipeline(paths, labels, repr(root), None, options)


# ---------------------------------------------------------------------------------------------
# Public entry points


def load_dataset(
    name,
    split="train",
    batch_size=32,
    *,
    seed=0,
    labels=False,
    data_dir=None,
    skip_corrupt=False,
    size=None,
    image_shape=None,
    shuffle=None,
):
    """Loads a dataset as batches of float32 images in [0, 1], NHWC.

    Args:
        name: str. One of `DATASETS`.
        split: str. "train", "eval" or "test" ("test" equals "eval" except for celeb_a, whose
            eval is the official validation split). Defaults to "train".
        batch_size: int. Examples per batch; the last batch may be smaller. Defaults to 32.
        seed: int. Seed of the shuffle and of the generated shapes. Defaults to 0.
        labels: bool. Yield (images, labels): shapes factors (7 float32), digit/mnist and
            folder class indices (int32), celeb_a attributes (40 int32 in {0, 1}).
            Defaults to False.
        data_dir: str or None. Folder of the data: required for "folder"; the tfds data
            directory for "mnist"; for "celeb_a" either the official files or a tfds data
            directory. Defaults to None (tfds' default directory).
        skip_corrupt: bool. Skip unreadable image files instead of raising DataError; see
            `dataset.skipped_files`. Defaults to False.
        size: int or None. Number of examples: for shapes the number generated (default
            50 000 train / 10 000 eval), for the others a cap on the first ones. Defaults to
            None.
        image_shape: tuple or None. (height, width, channels); defaults to `IMAGE_SHAPES`.
            celeb_a and folder accept any size with 1 or 3 channels, digits and mnist any
            size with 1 channel, shapes only (32, 32, 3).
        shuffle: bool or None. Shuffle each epoch; None shuffles train only, keeping eval and
            test in a fixed order. Defaults to None.

    Returns:
        tf.data.Dataset of images (batch, height, width, channels), or of (images, labels).
        Its attribute `skipped_files` is a `SkippedFiles`.

    Raises:
        DataError: unknown name or split, bad argument, data missing or unreadable.

    Example:

    ```python
    for images in load_dataset("shapes", "eval", batch_size=100).take(1):
        print(images.shape)  # (100, 32, 32, 3)
    ```
    """
    _check_name(name)
    _check_split(name, split)
    _check_batch_size(batch_size)
    _check_size(size)
    options = _Options(
        batch_size=int(batch_size),
        seed=int(seed),
        shuffle=split == "train" if shuffle is None else bool(shuffle),
        labels=bool(labels),
        image_shape=_image_shape_for(name, image_shape),
        skip_corrupt=bool(skip_corrupt),
        skipped=SkippedFiles(),
    )
    if name == "shapes":
        dataset = _shapes_dataset(split, size, options)
    elif name == "digits":
        dataset = _digits_dataset(split, size, options)
    elif name == "mnist":
        tfds_dir = None if data_dir is None else _existing_dir(data_dir, name)
        dataset = _mnist_dataset(split, size, tfds_dir, options)
    elif name == "celeb_a":
        dataset = _celeb_a_dataset(split, size, data_dir, options)
    else:
        dataset = _folder_dataset(split, size, data_dir, options)
    dataset.skipped_files = options.skipped
    return dataset


def load_arrays(
    name,
    split="eval",
    *,
    limit=None,
    labels=False,
    seed=0,
    data_dir=None,
    skip_corrupt=False,
    image_shape=None,
    batch_size=256,
):
    """Loads the first examples of a split in their fixed order as numpy arrays.

    Args:
        name: str. One of `DATASETS`.
        split: str. "train", "eval" or "test". Defaults to "eval".
        limit: int or None. Number of examples (the first ones); None is all.
        labels: bool. Also return the labels. Defaults to False.
        seed: int. Seed (selects the generated shapes). Defaults to 0.
        data_dir: str or None. See `load_dataset`.
        skip_corrupt: bool. See `load_dataset`.
        image_shape: tuple or None. See `load_dataset`.
        batch_size: int. Batch size while reading. Defaults to 256.

    Returns:
        images float32 (n, height, width, channels) in [0, 1], or (images, labels).
    """
    dataset = load_dataset(
        name,
        split,
        batch_size,
        seed=seed,
        labels=labels,
        data_dir=data_dir,
        skip_corrupt=skip_corrupt,
        size=limit,
        image_shape=image_shape,
        shuffle=False,
    )
    # Labels are only read when asked for: they may not exist (a folder without classes).
    batches = [tf.nest.map_structure(lambda tensor: tensor.numpy(), batch) for batch in dataset]
    if not batches:
        raise DataError(f"{name!r} split {split!r} yielded no readable examples")
    if not labels:
        return np.concatenate(batches)
    return tuple(np.concatenate(parts) for parts in zip(*batches))


def run_eval_images(config, limit, image_shape=None):
    """The first `limit` eval images of a run, read with the run's own settings
    (dataset, seed, data directory, corrupt-file handling, architecture's image
    shape): the images its training, evaluation and export all judge it on.

    Args:
        config: `RunConfig`, resolved.
        limit: int or None. Number of images; None is the whole eval split.
        image_shape: tuple or None. Defaults to the config's architecture's.
    """
    from irmae_keras.architectures import image_shape as architecture_shape

    return load_arrays(
        config.dataset, "eval", limit=limit, seed=config.seed, data_dir=config.data_dir,
        skip_corrupt=config.skip_corrupt,
        image_shape=tuple(image_shape or architecture_shape(config.architecture)),
    )


def _label_description(name, data_dir):
    """(label_kind, label_shape, num_classes, label_names) of a dataset."""
    if name == "shapes":
        return "factors", (len(SHAPES_FACTORS),), None, SHAPES_FACTORS
    if name == "celeb_a":
        return "attributes", (len(CELEB_A_ATTRIBUTES),), None, CELEB_A_ATTRIBUTES
    if name == "folder":
        classes = None if data_dir is None else tuple(folder_classes(_folder_files(data_dir)[1]))
        return "class", (), len(classes) if classes else None, classes or None
    return "class", (), 10, tuple(str(digit) for digit in range(10))


def _split_sizes(name, data_dir):
    """Default number of examples per split; None where unknown."""
    if name == "shapes":
        per_split = SHAPES_SIZES
    elif name == "mnist":
        per_split = MNIST_SIZES
    elif name == "celeb_a":
        return dict(CELEB_A_SIZES)
    elif name == "digits":
        from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel

        per_split = {s: len(i) for s, i in _digits_split(load_digits().target).items()}
    elif data_dir is None:
        return {split: None for split in SPLITS}
    else:
        per_split = {s: len(f) for s, f in split_folder_files(_folder_files(data_dir)[1]).items()}
    return {split: per_split[_two_way(split)] for split in SPLITS}


def dataset_info(name, data_dir=None):
    """Describes a dataset without loading its images.

    Args:
        name: str. One of `DATASETS`.
        data_dir: str or None. For "folder": the directory to count and list classes in;
            without it the folder's sizes and classes are None.

    Returns:
        DatasetInfo.
    """
    _check_name(name)
    label_kind, label_shape, num_classes, label_names = _label_description(name, data_dir)
    return DatasetInfo(
        name=name,
        image_shape=IMAGE_SHAPES[name],
        architecture=ARCHITECTURE_FOR[name],
        splits=SPLITS,
        sizes=_split_sizes(name, data_dir),
        label_kind=label_kind,
        label_shape=label_shape,
        num_classes=num_classes,
        label_names=label_names,
    )
