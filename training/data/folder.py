"""Any directory tree of images: a stable hash split, classes from sub-folders."""

import hashlib
import os
import stat

import numpy as np
from PIL import Image

from export.errors import DataError
from export.images import IMAGE_EXTENSIONS
from export.images import list_image_files
from irmae_keras import paper
from training.data.common import DataSource
from training.data.common import class_labels
from training.data.common import corrupt_image_message
from training.data.common import describe
from training.data.common import existing_dir
from training.data.common import logger
from training.data.common import two_way
from training.data.pipeline import file_pipeline


FOLDER_EVAL_FRACTION = 0.1


def check_folder_images(config):
    """Decodes, in full, every image file a folder run would read (train and eval)."""
    root, files = folder_files(config.data_dir)
    for split, size in (("train", config.train_size), ("eval", config.eval_size)):
        for relative in split_folder_files(files)[split][:size]:
            path = os.path.join(root, *relative.split("/"))
            try:
                with Image.open(path) as image:
                    image.load()
            # Pillow raises many exception types on malformed data; each means "unreadable".
            except Exception as error:  # pylint: disable=broad-except
                raise DataError(corrupt_image_message(path, describe(error))) from None


def stable_fraction(relative_path):
    """A number in [0, 1) fixed by the path alone (SHA-256), the same on every machine."""
    # The name's bytes as on disk: a name that is not valid UTF-8 hashes as well.
    digest = hashlib.sha256(os.fsencode(relative_path)).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_folder_files(relative_paths):
    """Splits files by a stable hash of their relative path: ≈90 % train, ≈10 % eval.

    A file is eval when `stable_fraction(path) < FOLDER_EVAL_FRACTION`, so adding files never
    moves others. With 2 or more files, each split gets at least one: the lowest-scoring
    train file moves to eval, or the highest-scoring eval file moves to train.

    Args:
        relative_paths: sequence of str.

    Returns:
        dict. "train" and "eval" → sorted lists of relative paths.
    """
    scores = {path: stable_fraction(path) for path in relative_paths}
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


def folder_labels(root, relative_paths, all_paths):
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


def folder_files(data_dir):
    """(root, relative image paths) of a folder dataset, or DataError when there are none."""
    if data_dir is None:
        raise DataError(
            "the folder dataset needs data_dir: pass --data-dir DIR with a directory of images "
            f"({', '.join(IMAGE_EXTENSIONS)}; sub-directories are searched)"
        )
    root = existing_dir(data_dir, "folder")
    files = regular_files(root, list_image_files(root))
    if files:
        return root, files
    others = sum(len(names) for _, _, names in os.walk(root))
    what = f"has {others} files but no image" if others else "is empty"
    raise DataError(
        f"{root!r} {what}; put {', '.join(IMAGE_EXTENSIONS)} files there (sub-directories are "
        f"searched) or pass another --data-dir"
    )


_reported_special = set()


def regular_files(root, relative_paths):
    """The paths that are regular files (or links to one): a FIFO named like an image
    would block its reader forever, and a socket or device holds no image. The others
    are left out, with one warning per folder."""
    kept, special = [], []
    for relative in relative_paths:
        try:
            regular = stat.S_ISREG(os.stat(os.path.join(root, *relative.split("/"))).st_mode)
        except OSError:
            regular = True  # missing or a broken link: its reader reports it by name
        (kept if regular else special).append(relative)
    if special and (root, tuple(special)) not in _reported_special:
        _reported_special.add((root, tuple(special)))
        logger.warning("left out %d file(s) of %r that are not regular files (first: %r)",
                       len(special), root, special[0])
    return kept


def folder_sizes(data_dir):
    """Images per split of the folder `data_dir`; None without one."""
    if data_dir is None:
        return {"train": None, "eval": None}
    return {split: len(files) for split, files in split_folder_files(folder_files(data_dir)[1]).items()}


def folder_label_description(data_dir):
    """The classes of the folder `data_dir` (its top-level sub-directories); unknown without one."""
    return class_labels(None if data_dir is None else folder_classes(folder_files(data_dir)[1]))


def folder_dataset(split, size, options):
    root, files = folder_files(options.data_dir)
    chosen = split_folder_files(files)[two_way(split)][:size]
    if not chosen:
        raise DataError(
            f"{root!r} has only {len(files)} image, so its {two_way(split)} split is empty; "
            f"add images (each split needs one, so at least 2)"
        )
    if options.labels:
        labels = folder_labels(root, chosen, files)
    else:
        labels = np.zeros(len(chosen), np.int32)
    paths = [os.path.join(root, *path.split("/")) for path in chosen]
    return file_pipeline(paths, labels, repr(root), None, options)


SOURCE = DataSource(
    name="folder",
    load=folder_dataset,
    sizes=folder_sizes,
    labels=folder_label_description,
    architecture="celeb_a",
    fits=tuple(paper.IMAGE_SHAPES),  # resized to any architecture's images
    needs_data_dir=True,
    check_images=check_folder_images,
)
