"""CelebA from the official files (or tensorflow-datasets): crop, attributes, partitions."""

import os

import numpy as np
import tensorflow as tf

from export.errors import DataError
from training.data.common import DataSource
from training.data.common import Labels
from training.data.common import existing_dir
from training.data.pipeline import STREAM_SHUFFLE_BUFFER
from training.data.pipeline import decoded_pipeline
from training.data.pipeline import file_pipeline
from training.data.pipeline import pillow_decoder
from training.data.tfds import TfdsData
from training.data.tfds import capped
from training.data.tfds import prepared_tfds_builder


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


# Official partition codes in list_eval_partition.txt.
CELEB_A_PARTITIONS = {"train": 0, "eval": 1, "test": 2}

# The tfds copy: its download host, the tfds split of each of ours, and the official files
# that stand in for it offline.
CELEB_A_TFDS = TfdsData(
    "celeb_a", "drive.google.com", {"train": "train", "eval": "validation", "test": "test"},
    offline_alternative="pass --data-dir with the official CelebA files (img_align_celeba/ and "
                        "list_eval_partition.txt)",
)


def celeb_a_attribute_vector(attributes):
    return tf.stack([tf.cast(attributes[a], tf.int32) for a in CELEB_A_ATTRIBUTES])


# Sub-folder of each file in the official download (Img/, Eval/, Anno/); flat layouts work too.
CELEB_A_OFFICIAL_FOLDERS = {
    "img_align_celeba": "Img",
    "list_eval_partition.txt": "Eval",
    "list_attr_celeba.txt": "Anno",
}


def celeb_a_path(data_dir, file_name):
    """data_dir/file_name, else data_dir/<official folder>/file_name; None if neither exists."""
    for folder in ("", CELEB_A_OFFICIAL_FOLDERS[file_name]):
        path = os.path.join(data_dir, folder, file_name)
        if os.path.exists(path):
            return path
    return None


def celeb_a_images_dir(data_dir):
    """The folder of aligned images, or None when data_dir has none."""
    path = celeb_a_path(data_dir, "img_align_celeba")
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


def celeb_a_labels(data_dir, names, labels):
    """Attribute labels of `names` (zeros when not asked for)."""
    if not labels:
        return np.zeros((len(names), len(CELEB_A_ATTRIBUTES)), np.int32)
    path = celeb_a_path(data_dir, "list_attr_celeba.txt")
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


def celeb_a_folder_dataset(split, size, data_dir, images_dir, options):
    partition = celeb_a_path(data_dir, "list_eval_partition.txt")
    if partition is None:
        raise DataError(
            f"CelebA in {data_dir!r} has {os.path.basename(images_dir)}/ but no "
            f"list_eval_partition.txt (lines like '000001.jpg 0'); copy the official "
            f"partition file into {data_dir!r}"
        )
    names = read_celeb_a_partition(partition)[split][:size]
    if not names:
        raise DataError(f"{partition} lists no images for split {split!r}; use the official file")
    labels = celeb_a_labels(data_dir, names, options.labels)
    paths = [os.path.join(images_dir, name) for name in names]
    return file_pipeline(paths, labels, repr(images_dir), CELEB_A_CROP, options)


def celeb_a_dataset(split, size, options):
    """CelebA from the official files when `options.data_dir` holds them, else from tfds."""
    data_dir = options.data_dir
    if data_dir is not None:
        data_dir = existing_dir(data_dir, "celeb_a")
        images_dir = celeb_a_images_dir(data_dir)
        if images_dir is not None:
            return celeb_a_folder_dataset(split, size, data_dir, images_dir, options)
    return celeb_a_tfds_dataset(split, size, data_dir, options)


def celeb_a_tfds_dataset(split, size, data_dir, options):
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    builder = prepared_tfds_builder(CELEB_A_TFDS, data_dir)
    examples = builder.as_dataset(
        split=CELEB_A_TFDS.splits[split],
        shuffle_files=options.shuffle,
        read_config=tfds.ReadConfig(shuffle_seed=options.seed, add_tfds_id=True),
        # JPEG bytes are decoded by Pillow after the shuffle, as for the local files.
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    items = examples.map(
        lambda ex: (ex["image"], ex["tfds_id"], celeb_a_attribute_vector(ex["attributes"])),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    items, n = capped(items, size, "celeb_a")
    decode = pillow_decoder(options, CELEB_A_CROP, sources_are_paths=False)
    # tfds shards are files: leave auto-sharding to tf.data (it shards by file).
    return decoded_pipeline(
        items, n, decode, options, shuffle_buffer=STREAM_SHUFFLE_BUFFER, shard_by_data=False
    )


SOURCE = DataSource(
    name="celeb_a",
    load=celeb_a_dataset,
    sizes=CELEB_A_SIZES,
    labels=Labels("attributes", (len(CELEB_A_ATTRIBUTES),), None, CELEB_A_ATTRIBUTES),
    architecture="celeb_a",
    fid_features="inception",  # CelebA's FIDs are conventionally InceptionV3's
)
