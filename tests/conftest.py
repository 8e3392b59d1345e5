"""Test setup: quiet TF, TF's kernels as users get them, two logical CPU devices, eager
functions, fixed seeds.

irmae_keras is imported first, as the library asks of its users, so that TensorFlow
starts with the CPU kernels the library chooses (oneDNN on every x86-64 CPU,
`irmae_keras.onednn`; an explicit TF_ENABLE_ONEDNN_OPTS is kept): the suite tests
what users run, and oneDNN's convolutions are 1.4-2x faster than Eigen's here.

The CPU is split into two logical devices before TensorFlow starts so that
MirroredStrategy can be tested on one machine. Functions run eagerly by default
(fast to start, easy to debug); tests that need graph mode use the `graph_mode`
fixture.
"""

import fcntl
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import irmae_keras  # noqa: E402 - before TensorFlow loads: it sets TF_ENABLE_ONEDNN_OPTS
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


EXPERIMENT_TESTS = "tests/test_experiments_"  # the modules that read `smoke_experiments`

# Scopes of a few tests that each run for a minute or more (measured: the experiments
# about 230 s, the fault injection about 50 s, the docs' snippets about 80 s, on the
# 2-core Xeon). xdist hands out scopes by their number of tests, so these few-test
# scopes came last, and one worker ran them alone while the other had finished.
LONG_SCOPES = (EXPERIMENT_TESTS, "tests/test_rundir.py::TestFaultInjection", "tests/test_docs.py")


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadscope` (setup.cfg), with every experiments module in one scope: the
    smoke experiments run one at a time (they share runs), so a second worker that asks
    for one would wait on the lock; in one scope one worker runs them all while the
    other takes the rest of the suite. The LONG_SCOPES go out first, in that order, then
    the others by their number of tests."""
    if config.option.dist != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ExperimentsTogether(LoadScopeScheduling):
        _long_first = False

        def _split_scope(self, nodeid):
            return EXPERIMENT_TESTS if nodeid.startswith(EXPERIMENT_TESTS) else super()._split_scope(nodeid)

        def _assign_work_unit(self, node):
            if not self._long_first:  # the queue is complete by the first assignment
                self._long_first = True

                def rank(scope):  # a LONG_SCOPES index, or after them all
                    return next((i for i, p in enumerate(LONG_SCOPES) if scope.startswith(p)), len(LONG_SCOPES))

                ordered = sorted(self.workqueue.items(), key=lambda item: rank(item[0]))  # stable
                self.workqueue.clear()
                self.workqueue.update(ordered)
            super()._assign_work_unit(node)

    return ExperimentsTogether(config, log)


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


# The command-line modules the tests run in processes forked from a warm interpreter.
WARM_CLI_MODULES = ("training.fit", "training.evaluate", "training.classify", "training.experiments.__main__",
                    "export.__main__", "export.encode")


@pytest.fixture(scope="session")
def warm_interpreter():
    """One `tests.killing.WarmInterpreter` per session (per xdist worker) that has imported
    the command-line modules: `warm_interpreter.cli(module, *args)` is `run_cli` without a
    fresh interpreter's imports, `.run(kill_at, ...)` the same killed at a rename."""
    from tests.killing import WarmInterpreter

    with WarmInterpreter(*WARM_CLI_MODULES) as warm:
        yield warm


# The settings of the session's tiny trained runs (tests.helpers owns them; kept importable
# from here).
from tests.helpers import TINY_RUN  # noqa: E402


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


# --- one exported run for the export tests ----------------------------------------------

from tests.helpers import EXPORT_EVAL_IMAGES  # noqa: E402


@pytest.fixture(scope="session")
def shapes_eval_images():
    """The first EXPORT_EVAL_IMAGES shapes eval images: what `tiny_export` was checked on."""
    from training import data

    return data.load_arrays("shapes", "eval", limit=EXPORT_EVAL_IMAGES)


@pytest.fixture(scope="session")
def tiny_export_source(tmp_path_factory):
    """(model, run_dir): a shapes IRMAE (n = 4, l = 2) trained a few steps and saved as a
    run directory (its config and model, as RunDir writes them). Read it; write elsewhere."""
    from tests.helpers import make_run
    from training import data

    keras.utils.set_random_seed(0)
    images, _ = data.generate_shapes(96, seed=1)
    model = irmae_keras.build_autoencoder("shapes", latent_dim=4, linear_layers=2)
    model.compile()
    model.fit(images, epochs=2, batch_size=32, verbose=0)
    run = make_run(tmp_path_factory.mktemp("export-run") / "shapes-irmae", model,
                   dataset="shapes", latent_dim=model.latent_dim)
    return model, run.path


@pytest.fixture(scope="session")
def tiny_export(tiny_export_source):
    """(out, manifest, stdout) of `python -m export RUN_DIR --rank auto --eval-size 64` on
    `tiny_export_source`, run once per session (per xdist worker) in-process; the export
    modules' tests read it."""
    import contextlib
    import io

    from export import manifest as manifest_lib
    from export.__main__ import main as export_main
    from training.rundir import RunDir

    _, run_dir = tiny_export_source
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert export_main([run_dir, "--rank", "auto", "--eval-size", str(EXPORT_EVAL_IMAGES)]) == 0
    out = RunDir(run_dir).export_dir
    return out, manifest_lib.read_manifest(out), stdout.getvalue()


@pytest.fixture(scope="session")
def tiny_export_rank(tiny_export):
    """K of `tiny_export`'s compact models."""
    return tiny_export[1]["compact"]["rank"]


# --- the smoke budget's experiments -----------------------------------------------------


class SmokeExperiments:
    """The smoke budget's experiments over one runs directory, each run at most once per
    session (per xdist worker) when a test first asks for its results: an experiment
    reuses the runs another one trained, and the report reads them all."""

    def __init__(self, root):
        from training.experiments import budgets

        self.budget = budgets.BUDGETS["smoke"]
        self.runs, self.out = str(root / "runs"), str(root / "results")

    def result(self, name):
        """The experiment's results.json, after running it if this session has not; checks
        what it saved beside it (the command, the table, figures that are images)."""
        import json

        from PIL import Image

        from training.experiments import runner

        folder = os.path.join(self.out, name)
        path = os.path.join(folder, "results.json")
        returned = None
        # Under xdist the workers share the folders: one experiment at a time runs, holding
        # the lock (experiments share runs), and a worker that waited reads its results.
        os.makedirs(self.out, exist_ok=True)
        with open(os.path.join(self.out, ".running.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not os.path.exists(path):
                returned = runner.run_experiment(name, self.budget, self.runs, self.out)
        with open(path) as handle:
            saved = json.load(handle)
        with open(os.path.join(folder, "table.md")) as handle:
            assert handle.read().strip() == saved["table"] == (returned or saved)["table"]
        assert saved["experiment"] == name and saved["budget"]["name"] == "smoke"
        assert saved["command"] == f"python -m training.experiments {name} --budget smoke"
        assert saved["hardware"]["cores"] >= 1 and saved["seconds"]["this_call"] > 0
        for file_name, caption in saved["figures"]:
            with Image.open(os.path.join(folder, file_name)) as image:
                assert image.size[0] > 50 and image.size[1] > 50, file_name
            assert caption
        return saved

    def results(self):
        """Every registered experiment's results.json, by name."""
        from training.experiments import registry

        return {name: self.result(name) for name in registry.EXPERIMENTS}


@pytest.fixture(scope="session")
def smoke_experiments(tmp_path_factory, worker_id):
    """`SmokeExperiments` in a folder of this session's, one for all xdist workers (the
    folder above each worker's base temp is the session's own), so that each experiment
    runs once per session however the modules that read it are spread."""
    if worker_id == "master":
        return SmokeExperiments(tmp_path_factory.mktemp("experiments"))
    root = tmp_path_factory.getbasetemp().parent / "smoke-experiments"
    root.mkdir(exist_ok=True)
    return SmokeExperiments(root)
