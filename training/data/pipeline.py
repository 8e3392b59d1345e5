"""The tf.data pipelines: in-memory and decoded-file pipelines, Pillow decoding, corrupt files."""

import os
import re
import stat

import numpy as np
import tensorflow as tf
from PIL import Image

from export.errors import DataError
from export.images import decode_image
from training.data.common import corrupt_image_message
from training.data.common import describe
from training.data.common import logger


# Decoded uint8 images up to this many bytes stay in memory after the first epoch.
CACHE_LIMIT_BYTES = 3 * 1024**3


# How many encoded images one Pillow call decodes: amortises the per-call overhead.
DECODE_BATCH = 64


# Shuffle buffer for datasets streamed from tfds files (whole-dataset shuffles elsewhere).
STREAM_SHUFFLE_BUFFER = 10_000


def finish(dataset, options, shard_by_data=True):
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


def shuffled(dataset, options, buffer_size):
    if not options.shuffle:
        return dataset
    return dataset.shuffle(buffer_size, seed=options.seed, reshuffle_each_iteration=True)


def in_memory_pipeline(source, n, batch_transform, options):
    """Caches small raw examples, shuffles them whole, batches, then transforms each batch.

    Args:
        source: tf.data.Dataset of raw examples.
        n: int. Number of examples (the shuffle buffer: a full shuffle).
        batch_transform: callable taking the components of one batch of raw examples and
            returning (images float32 in [0, 1], labels).
        options: Options.

    Returns:
        tf.data.Dataset.
    """
    dataset = shuffled(source.cache(), options, max(n, 1))
    dataset = dataset.batch(options.batch_size)
    dataset = dataset.map(
        lambda *batch: batch_transform(*batch), num_parallel_calls=tf.data.AUTOTUNE
    )
    return finish(dataset, options)


def decoded_pipeline(items, n, decode, options, shuffle_buffer=None, shard_by_data=True):
    """Decodes encoded images with Pillow, caches them when they fit, shuffles and batches.

    Args:
        items: tf.data.Dataset of (source, name, label): a file path or encoded bytes, the
            name used in error messages, and the label.
        n: int. Number of items.
        decode: callable (sources, names) → (uint8 images, ok flags) on one batch of items,
            as built by `pillow_decoder`.
        options: Options.
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
        items = shuffled(items, options, shuffle_buffer or max(n, 1))
    dataset = items.batch(DECODE_BATCH).map(
        lambda sources, names, labels: (*decode(sources, names), labels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    dataset = dataset.unbatch()
    if options.skip_corrupt:
        dataset = dataset.filter(lambda image, ok, label: ok)
    dataset = dataset.map(lambda image, ok, label: (image, label))
    if not options.skip_corrupt:
        # Every item decodes or fails the run: the count is known, so Keras knows the
        # steps of an epoch (its progress bar and --steps-per-execution need them).
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(n))
    if cache:
        dataset = shuffled(dataset.cache(), options, max(n, 1))
    dataset = dataset.batch(options.batch_size).map(
        lambda images, labels: (tf.cast(images, tf.float32) / 255.0, labels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return finish(dataset, options, shard_by_data)


def pillow_decoder(options, crop, sources_are_paths):
    """Builds the batch decoder of `decoded_pipeline` (a numpy_function inside tf.data).

    Args:
        options: Options. Gives image_shape; skip_corrupt says whether to skip unreadable
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
                name, reason = os.fsdecode(name), describe(error)
                if not options.skip_corrupt:
                    raise DataError(corrupt_image_message(name, reason)) from error
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
            # Never opened unless regular: opening a FIFO blocks until someone writes to it.
            if not stat.S_ISREG(os.stat(path).st_mode):
                unreadable[path] = "not a regular file (a FIFO, socket or device)"
                continue
            with Image.open(path) as image:
                image.verify()
        # Pillow raises many exception types on malformed data; each means "unreadable".
        except Exception as error:  # pylint: disable=broad-except
            unreadable[path] = describe(error)
    return unreadable


def readable_files(paths, labels, where, options):
    """Drops (skip_corrupt) or refuses (DataError) files that `check_image_files` rejects."""
    unreadable = check_image_files(paths)
    if not unreadable:
        return paths, labels
    first, reason = next(iter(unreadable.items()))
    if not options.skip_corrupt:
        how = f"{len(unreadable)} of {len(paths)} images in {where} are unreadable; fix them"
        raise DataError(corrupt_image_message(first, reason, how))
    for path, why in unreadable.items():  # `reason` stays the first file's
        options.skipped.add(path, why)
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


def file_pipeline(paths, labels, where, crop, options):
    """The dataset of a list of image files: checked, decoded, cached when small."""
    paths, labels = readable_files(list(paths), np.asarray(labels), where, options)
    # As bytes: a file name that is not valid UTF-8 is no str TensorFlow can hold.
    paths = [os.fsencode(path) for path in paths]
    items = tf.data.Dataset.from_tensor_slices((paths, paths, labels))
    decode = pillow_decoder(options, crop, sources_are_paths=True)
    return decoded_pipeline(items, len(paths), decode, options)
