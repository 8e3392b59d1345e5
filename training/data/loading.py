"""The entry points: load_dataset, load_arrays, run_eval_images, dataset_info,
check_every_image. Every per-dataset fact comes from the dataset's `DataSource`."""

import numpy as np
import tensorflow as tf

from export.errors import DataError
from training.data import registry
from training.data.common import check_batch_size
from training.data.common import check_size
from training.data.common import check_split
from training.data.common import DatasetInfo
from training.data.common import image_shape_for
from training.data.common import Options
from training.data.common import SkippedFiles
from training.data.common import SPLITS


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
        image_shape: tuple or None. (height, width, channels); defaults to the dataset's
            architecture's (`DATASETS[name].image_shape`).
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
    source = registry.get(name)
    check_split(name, split)
    check_batch_size(batch_size)
    check_size(size)
    options = Options(
        batch_size=int(batch_size),
        seed=int(seed),
        shuffle=split == "train" if shuffle is None else bool(shuffle),
        labels=bool(labels),
        image_shape=image_shape_for(source, image_shape),
        skip_corrupt=bool(skip_corrupt),
        skipped=SkippedFiles(),
        data_dir=data_dir,
    )
    dataset = source.load(split, size, options)
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


def check_every_image(config):
    """Decodes every image file a run would read (train and eval), in full, and
    raises DataError on the first that fails (unless the run skips corrupt files).

    Slower than `check_image_files` (≈1 ms per image) but it also catches the
    truncated JPEGs that only fail mid-epoch: `--overwrite` calls it before the old
    run is deleted. Datasets that are not image files need nothing.
    """
    check_images = registry.get(config.dataset).check_images
    if check_images is not None and not config.skip_corrupt:
        check_images(config)


def dataset_info(name, data_dir=None):
    """Describes a dataset without loading its images.

    Args:
        name: str. One of `DATASETS`.
        data_dir: str or None. For "folder": the directory to count and list classes in;
            without it the folder's sizes and classes are None.

    Returns:
        DatasetInfo.
    """
    source = registry.get(name)
    labels = source.label_description(data_dir)
    return DatasetInfo(
        name=name,
        image_shape=source.image_shape,
        architecture=source.architecture,
        splits=SPLITS,
        sizes=source.split_sizes(data_dir),
        label_kind=labels.kind,
        label_shape=labels.shape,
        num_classes=labels.num_classes,
        label_names=labels.names,
    )
