"""Test setup: quiet TF, two logical CPU devices, eager functions, fixed seeds.

The CPU is split into two logical devices before TensorFlow starts so that
MirroredStrategy can be tested on one machine. Functions run eagerly by default
(fast to start, easy to debug); tests that need graph mode use the `graph_mode`
fixture.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)
tf.config.run_functions_eagerly(True)


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true",
                     help="also run the tests marked slow (processes, full exports, experiments): CI's command")


def pytest_collection_modifyitems(config, items):
    """The everyday command skips the slow tests; `--run-slow` runs everything."""
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_and_policy():
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def graph_mode():
    """Runs `tf.function`s as graphs for the duration of a test."""
    tf.config.run_functions_eagerly(False)
    yield
    tf.config.run_functions_eagerly(True)


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    A second MirroredStrategy in the same process restarts the collective
    group/instance keys and collides with the first one's all-reduces
    ("Shape mismatch in the collective instance"), so tests share this one with
    `training.fit.make_strategy`, which keeps one per process.
    """
    from training.trainer import make_strategy

    strategy = make_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2, "the CPU is split into two logical devices above"
    return strategy


# The settings of the session's tiny trained runs: 64 images, n = 4, two epochs.
TINY_RUN = dict(train_size=64, eval_size=64, latent_dim=4, batch_size=16, epochs=2, export=False)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """Tiny run directories trained once for the whole session (as graphs, as users do):
    a shapes IRMAE, a shapes AE and a digits IRMAE (l = 2). Tests read them and write
    only into their own sub-folders (evaluation/, classification/)."""
    from tests.helpers import graph_functions
    from training.config import RunConfig
    from training.trainer import train

    root = tmp_path_factory.mktemp("tiny-runs")
    settings = {
        "shapes": dict(dataset="shapes"),
        "shapes_ae": dict(dataset="shapes", model="ae", linear_layers=0),
        "digits": dict(dataset="digits", linear_layers=2),
    }
    with graph_functions():
        return {
            key: train(RunConfig(output_dir=str(root), run_name=f"tiny-{key}", **TINY_RUN, **values),
                       quiet=True).run_dir
            for key, values in settings.items()
        }
