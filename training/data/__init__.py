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

The package: `common` (the `DataSource` record, checks, options), `pipeline` (tf.data
and Pillow decoding), one module per source (`shapes`, `digits`, `tfds`, `celeb_a`,
`folder`), each declaring its `DataSource`, `registry` (the one table of them,
`DATASETS`), and `loading` (the entry points, re-exported here).
"""

# The one image preprocessing, re-exported for the readers' users.
from export.images import decode_image
from export.images import list_image_files
from training.data.celeb_a import CELEB_A_ATTRIBUTES
from training.data.celeb_a import read_celeb_a_attributes
from training.data.celeb_a import read_celeb_a_partition
from training.data.common import SPLITS
from training.data.common import DataSource
from training.data.common import DatasetInfo
from training.data.common import Labels
from training.data.common import SkippedFiles
from training.data.common import class_labels
from training.data.folder import folder_classes
from training.data.folder import split_folder_files
from training.data.loading import check_every_image
from training.data.loading import dataset_info
from training.data.loading import load_arrays
from training.data.loading import load_dataset
from training.data.loading import run_eval_images
from training.data.pipeline import check_image_files
from training.data.pipeline import data_error_from
from training.data.registry import DATASETS
from training.data.shapes import SHAPES_FACTORS
from training.data.shapes import generate_shapes
from training.data.shapes import render_shapes
from training.data.shapes import sample_shapes_factors
from training.data.tfds import MNIST_TFDS
from training.data.tfds import download_host_reachable

__all__ = [
    "decode_image",
    "list_image_files",
    "CELEB_A_ATTRIBUTES",
    "read_celeb_a_attributes",
    "read_celeb_a_partition",
    "SPLITS",
    "DataSource",
    "DatasetInfo",
    "Labels",
    "SkippedFiles",
    "class_labels",
    "check_every_image",
    "folder_classes",
    "split_folder_files",
    "dataset_info",
    "load_arrays",
    "load_dataset",
    "run_eval_images",
    "check_image_files",
    "data_error_from",
    "DATASETS",
    "SHAPES_FACTORS",
    "generate_shapes",
    "render_shapes",
    "sample_shapes_factors",
    "MNIST_TFDS",
    "download_host_reachable",
]
