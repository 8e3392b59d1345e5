"""tensorflow-datasets: the mnist source, and the tfds reading (with an offline probe that
fails fast) that celeb_a shares."""

import dataclasses
import os
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Mapping

import tensorflow as tf

from export.errors import DataError
from training.data.common import DataSource
from training.data.common import describe
from training.data.common import existing_dir
from training.data.digits import DIGIT_LABELS
from training.data.digits import resized_batch
from training.data.pipeline import in_memory_pipeline


MNIST_SIZES = {"train": 60_000, "eval": 10_000}


@dataclasses.dataclass(frozen=True)
class TfdsData:
    """A tfds dataset as a source module reads it: its tfds name, the host its download
    comes from (probed first, so offline fails fast), which tfds split each of our splits
    is, and what else a user without the download can pass (said in the error)."""

    name: str
    host: str
    splits: Mapping
    offline_alternative: str = ""


MNIST_TFDS = TfdsData("mnist", "storage.googleapis.com", {"train": "train", "eval": "test", "test": "test"})


PROBE_TIMEOUT_S = 3.0


def proxy_for(host):
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
    address = proxy_for(host) or (host, 443)
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


def not_prepared_message(tfds_data, looked_in, why):
    name = tfds_data.name
    how = (
        f'on a connected machine run `python -c "import tensorflow_datasets as tfds; '
        f"tfds.load('{name}')\"`, copy its ~/tensorflow_datasets folder (the one holding "
        f"{name}/) here and pass it as --data-dir"
    )
    if tfds_data.offline_alternative:
        how += f", or {tfds_data.offline_alternative}"
    return f"{name} is not prepared in {looked_in!r} and {why}; {how}, or use --dataset folder"


def prepared_tfds_builder(tfds_data, data_dir):
    """A tfds builder of `tfds_data` (a TfdsData) whose data is on disk, downloading it
    only when its host is reachable."""
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    builder = tfds.builder(tfds_data.name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    host = tfds_data.host
    looked_in = os.fspath(builder.data_dir)
    if not download_host_reachable(host):
        raise DataError(not_prepared_message(tfds_data, looked_in, f"{host} cannot be reached"))
    try:
        builder.download_and_prepare()
    # Downloads fail in many ways (quota, HTTP, disk); each gets the same advice.
    except Exception as error:  # pylint: disable=broad-except
        why = f"downloading it failed ({describe(error)[:200]})"
        raise DataError(not_prepared_message(tfds_data, looked_in, why)) from error
    return builder


def capped(dataset, size, name):
    """Takes the first `size` examples; returns (dataset, number of examples or its bound)."""
    if size is not None:
        dataset = dataset.take(size)
    n = int(dataset.cardinality())
    if n >= 0:
        return dataset, n
    if size is not None:
        return dataset, size
    raise DataError(f"cannot count the examples of {name}; pass size=N (--train-size / --eval-size N)")


def mnist_dataset(split, size, options):
    data_dir = None if options.data_dir is None else existing_dir(options.data_dir, "mnist")
    builder = prepared_tfds_builder(MNIST_TFDS, data_dir)
    examples = builder.as_dataset(split=MNIST_TFDS.splits[split], shuffle_files=False)
    source = examples.map(
        lambda example: (example["image"], tf.cast(example["label"], tf.int32)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    source, n = capped(source, size, "mnist")
    return in_memory_pipeline(
        source,
        n,
        lambda images, labels: resized_batch(images, labels, 255.0, options.image_shape),
        options,
    )


SOURCE = DataSource(
    name="mnist",
    load=mnist_dataset,
    sizes=MNIST_SIZES,
    labels=DIGIT_LABELS,
    architecture="mnist",
    channels=(1,),
)
