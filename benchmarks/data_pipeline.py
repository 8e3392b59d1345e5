"""Throughput of the offline data pipelines: `python -m benchmarks.data_pipeline`.

Prints one JSON object: shapes generation (`generate_shapes`, numpy arrays) in images/s, and
for shapes, digits and a folder of generated 64×64 JPEGs the images/s of iterating the train
pipeline alone, at batch sizes 32 and 256: the first epoch (decoding, filling caches) and
later epochs (timed over at least a second). TensorFlow start-up, a warm-up generation and
building each pipeline are not timed.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import irmae_keras  # noqa: E402,F401  (first: it sets TensorFlow's oneDNN default)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from training import data  # noqa: E402

BATCH_SIZES = (32, 256)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.data_pipeline",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--generate", type=int, default=50_000, help="shapes images per generation run"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="generation runs (median and range reported)"
    )
    parser.add_argument(
        "--shapes-size", type=int, default=20_000, help="shapes train images per epoch"
    )
    parser.add_argument(
        "--folder-images", type=int, default=2_000, help="JPEGs in the folder dataset"
    )
    return parser.parse_args(argv)


def shapes_generation_rates(n, repeats):
    """Images/s of `generate_shapes(n)` in each of `repeats` runs, after a warm-up."""
    data.generate_shapes(256, seed=0)
    rates = []
    for repeat in range(repeats):
        started = time.perf_counter()
        data.generate_shapes(n, seed=repeat)
        rates.append(n / (time.perf_counter() - started))
    return rates


def epochs_rate(dataset, min_seconds=0.0):
    """Images/s of full passes over `dataset`: one, or as many as fill `min_seconds`."""
    count, started = 0, time.perf_counter()
    while True:
        count += sum(int(batch.shape[0]) for batch in dataset)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return count / elapsed


def pipeline_rates(name, **kwargs):
    """{batch size: {first_epoch, later_epochs}} images/s of the train pipeline of `name`.

    Later epochs are timed over at least a second, so small datasets give stable numbers.
    """
    rates = {}
    for batch_size in BATCH_SIZES:
        dataset = data.load_dataset(name, "train", batch_size, **kwargs)
        first = epochs_rate(dataset)
        later = epochs_rate(dataset, min_seconds=1.0)
        rates[str(batch_size)] = {"first_epoch": round(first), "later_epochs": round(later)}
    return rates


def write_jpeg_folder(root, count, size=64):
    """Writes `count` smooth random size×size JPEGs (quality 90) under `root`."""
    rng = np.random.default_rng(0)
    for index in range(count):
        coarse = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((size, size), Image.Resampling.BILINEAR)
        image.save(os.path.join(root, f"{index:05d}.jpg"), quality=90)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    generation = shapes_generation_rates(args.generate, args.repeats)
    rates = {
        "shapes": pipeline_rates("shapes", size=args.shapes_size),
        "digits": pipeline_rates("digits"),
    }
    images_per_epoch = {
        "shapes": args.shapes_size,
        "digits": data.dataset_info("digits").sizes["train"],
    }
    with tempfile.TemporaryDirectory() as root:
        write_jpeg_folder(root, args.folder_images)
        rates["folder_jpeg_64"] = pipeline_rates("folder", data_dir=root)
        images_per_epoch["folder_jpeg_64"] = data.dataset_info("folder", root).sizes["train"]
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
        },
        "shapes_generation_images_per_s": round(statistics.median(generation)),
        "shapes_generation_range": [round(min(generation)), round(max(generation))],
        "shapes_generation_n": args.generate,
        "pipeline_images_per_s": rates,
        "train_images_per_epoch": images_per_epoch,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
