"""`python -m training.classify` on a tiny digits run trained once for the module."""

import json
import os

import keras
import numpy as np
import pytest

from export.errors import UsageError
from tests.helpers import call_main
from tests.helpers import graph_functions
from tests.helpers import make_run
from training import classify
from training import data
from training.evaluation import classification
from training.rundir import CLASSIFICATION_DIR
from training.rundir import RunDir

TINY = ["--epochs", "3", "--patience", "2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_runs):
    with graph_functions():
        # The dataset is checked before the model loads: an empty file suffices.
        shapes = make_run(tmp_path_factory.mktemp("runs") / "shapes-irmae", model_bytes=b"", dataset="shapes")
        return {"digits": tiny_runs["digits"], "shapes": shapes.path}


@pytest.fixture(autouse=True)
def _graph_mode(graph_mode):
    """The heads train with model.fit as in a user's process (and faster as graphs)."""


@pytest.fixture(scope="module")
def two_by_two(runs):
    """2 label counts × 2 seeds, encoder and supervised: the results.json document."""
    with graph_functions():
        document = classification.classify(classify.parse_settings(
            [runs["digits"], "--labels", "20,10", "--seeds", "2", *TINY]))
    return document


@pytest.fixture(scope="module")
def digits_labels():
    return data.load_arrays("digits", "train", labels=True)[1]


class TestSplits:
    def test_validation_is_a_stratified_tenth_disjoint_from_the_pool(self, digits_labels):
        validation, pool = classification.validation_split(digits_labels)
        assert len(np.intersect1d(validation, pool)) == 0
        assert len(validation) + len(pool) == len(digits_labels) == 1433
        for label in range(10):
            members = np.sum(digits_labels == label)
            assert np.sum(digits_labels[validation] == label) == round(0.1 * members)
        again, _ = classification.validation_split(digits_labels)
        np.testing.assert_array_equal(validation, again)

    def test_subsets_are_balanced_nested_seeded_and_outside_validation(self, digits_labels):
        validation, pool = classification.validation_split(digits_labels)
        previous = np.array([], int)
        for count in (10, 15, 50, 100, 1000):
            subset = classification.labelled_subset(digits_labels, pool, count, seed=3, num_classes=10)
            counts = np.bincount(digits_labels[subset], minlength=10)
            assert len(subset) == len(np.unique(subset)) == count
            assert counts.max() - counts.min() <= 1 and counts.min() == count // 10
            assert len(np.intersect1d(subset, validation)) == 0
            assert np.all(np.isin(previous, subset))  # a seed's smaller subset lies inside
            previous = subset
        one = classification.labelled_subset(digits_labels, pool, 50, seed=0, num_classes=10)
        np.testing.assert_array_equal(one, classification.labelled_subset(digits_labels, pool, 50, 0, 10))
        assert not np.array_equal(one, classification.labelled_subset(digits_labels, pool, 50, 1, 10))
        np.testing.assert_array_equal(classification.labelled_subset(digits_labels, pool, "all", 0, 10), pool)

    def test_a_class_too_small_for_its_share(self, digits_labels):
        _, pool = classification.validation_split(digits_labels)
        with pytest.raises(UsageError, match="class 8 has 125 training images outside the validation split, fewer than its balanced share of 127"):
            classification.labelled_subset(digits_labels, pool, 1270, seed=0, num_classes=10)

    @pytest.mark.parametrize("text, expected", [
        ("10,50,all", [10, 50, "all"]), ("all, 100,10,100", [10, 100, "all"]), ("7", [7])])
    def test_label_counts(self, text, expected):
        assert classify.parse_label_counts(text) == expected


class TestFeaturesAndSelection:
    def test_pre_and_post_stack_features(self, runs):
        model = keras.models.load_model(RunDir(runs["digits"]).model_path)
        images = data.load_arrays("digits", "test", limit=8)
        pre = classification.frozen_features(model, images, "pre_stack")
        post = classification.frozen_features(model, images, "post_stack")
        np.testing.assert_allclose(pre, keras.ops.convert_to_numpy(model.encoder_network(images)), rtol=1e-6)
        kernel = keras.ops.convert_to_numpy(model.linear_stack.folded_kernel())
        np.testing.assert_allclose(post, pre @ kernel, rtol=1e-4, atol=1e-7)
        assert not np.allclose(pre, post)

    def test_the_official_head(self):
        head = classification.build_head(input_dim=6, width=4, num_classes=3)
        dense = [layer for layer in head.layers if isinstance(layer, keras.layers.Dense)]
        assert [(layer.units, layer.use_bias) for layer in dense] == [(4, True), (4, True), (3, False)]
        assert [layer.rate for layer in head.layers if isinstance(layer, keras.layers.Dropout)] == [0.5, 0.5]

    def test_the_best_validation_epoch_is_restored(self):
        rng = np.random.default_rng(0)
        features = rng.normal(size=(300, 5)).astype("float32")
        labels = (features[:, 0] > 0).astype("int32")
        keras.utils.set_random_seed(0)
        head = classification.build_head(5, 8, 2)
        settings = classification.Settings(run_dir="", labels=[], seeds=1, features="pre_stack",
                                     epochs=6, patience=6, supervised=False, out="")
        scores = classification.train_and_test(head, (features[:100], labels[:100]), (features[100:200], labels[100:200]),
                                         (features[200:], labels[200:]), settings)
        _, accuracy = head.evaluate(features[100:200], labels[100:200], verbose=0)
        assert accuracy == pytest.approx(scores["val_accuracy"], abs=1e-6)
        assert 1 <= scores["best_epoch"] <= scores["epochs_run"] == 6
        _, test_accuracy = head.evaluate(features[200:], labels[200:], verbose=0)
        assert scores["test_error"] == pytest.approx(1 - test_accuracy, abs=1e-6)


@pytest.mark.slow  # spawns processes or trains and exports end to end
class TestClassifyDigits:
    def test_every_seed_and_label_count_for_both_methods(self, two_by_two):
        rows = two_by_two["results"]
        assert sorted((r["method"], r["labels"], r["seed"]) for r in rows) == sorted(
            (m, c, s) for m in ("encoder", "supervised") for c in (10, 20) for s in (0, 1))
        for row in rows:
            assert row["class_counts"] == [row["labels"] // 10] * 10  # class-balanced
            assert row["subset_size"] == row["labels"]
            assert 0 <= row["test_error"] <= 1 and row["test_error"] == pytest.approx(1 - row["test_accuracy"])
            assert 0 <= row["val_accuracy"] <= 1 and 1 <= row["best_epoch"] <= row["epochs_run"] <= 3
        # Encoder and supervised heads see the same subsets; seeds draw different ones.
        by_key = {(r["method"], r["labels"], r["seed"]): r["subset_sha256"] for r in rows}
        assert by_key["encoder", 10, 0] == by_key["supervised", 10, 0] != by_key["encoder", 10, 1]

    def test_summary_and_split_sizes(self, two_by_two):
        document = two_by_two
        assert document["labels"] == [10, 20] and document["seeds"] == 2 and document["num_classes"] == 10
        assert document["validation_images"] + document["pool_images"] == document["train_images"] == 1433
        assert document["test_images"] == 364 and document["features"] == "pre_stack"
        assert document["feature_dim"] == 4
        errors = [r["test_error"] for r in document["results"] if r["method"] == "supervised" and r["labels"] == 20]
        entry = document["summary"]["supervised"]["20"]
        assert entry["mean_test_error"] == pytest.approx(np.mean(errors))
        assert entry["std_test_error"] == pytest.approx(np.std(errors, ddof=1)) and entry["seeds"] == 2

    def test_files_and_table(self, runs, two_by_two):
        out = RunDir(runs["digits"]).file(CLASSIFICATION_DIR)
        assert sorted(os.listdir(out)) == ["results.json", "results.md"]
        assert json.load(open(os.path.join(out, "results.json"))) == two_by_two
        table = open(os.path.join(out, "results.md")).read()
        assert "| labels | frozen encoder (pre_stack) + head | supervised from scratch |" in table
        for count in ("10", "20"):
            encoder = two_by_two["summary"]["encoder"][count]
            supervised = two_by_two["summary"]["supervised"][count]
            row = (f"| {count} | {100 * encoder['mean_test_error']:.2f} ± {100 * encoder['std_test_error']:.2f} | "
                   f"{100 * supervised['mean_test_error']:.2f} ± {100 * supervised['std_test_error']:.2f} |")
            assert row in table.splitlines()

    def test_post_stack_all_labels_without_the_baseline(self, runs, tmp_path, capsys):
        out = str(tmp_path / "post")
        classify.main([runs["digits"], "--features", "post_stack", "--labels", "all", "--seeds", "1",
                       "--no-supervised", "--epochs", "2", "--out", out])
        document = json.load(open(os.path.join(out, "results.json")))
        assert list(document["summary"]) == ["encoder"] and document["protocol"]["supervised"] is None
        (row,) = document["results"]
        assert row["labels"] == "all" and row["subset_size"] == document["pool_images"]
        assert document["summary"]["encoder"]["all"]["std_test_error"] is None
        table = open(os.path.join(out, "results.md")).read()
        assert f"| all ({document['pool_images']}) | {100 * row['test_error']:.2f} |" in table
        assert "supervised" not in table and table in capsys.readouterr().out


# --- bad input: one line on stderr, exit 2, nothing written ------------------------------


def _cli(warm_interpreter, *args):
    """`python -m training.classify ARGS` in a process (forked from the warm interpreter)."""
    return warm_interpreter.cli("training.classify", *args, timeout=300)


@pytest.mark.slow  # spawns processes
@pytest.mark.parametrize("args, message", [
    (["--labels", "10,ten"], "--labels takes positive integers or 'all' separated by commas; got 'ten'"),
    (["--seeds", "0"], "--seeds must be an integer >= 1; got 0."),
    (["--features", "middle"], "argument --features: invalid choice: 'middle'"),
])
def test_bad_flags(runs, tmp_path, args, message, warm_interpreter):
    out = str(tmp_path / "out")
    result = _cli(warm_interpreter, runs["digits"], *args, "--out", out)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not os.path.exists(out)


def test_shapes_has_no_classes(runs, tmp_path, capsys):
    out = str(tmp_path / "out")
    code, stdout, stderr = call_main(classify.main, [runs["shapes"], "--out", out], "training.classify", capsys)
    assert code == 2
    assert stdout == ""
    assert stderr == (
        "training.classify: error: classification needs a labelled dataset (digits, mnist, or a folder "
        "with one sub-folder per class); the run shapes-irmae was trained on shapes, whose labels are factors.\n")
    assert not os.path.exists(out)


@pytest.mark.parametrize("labels, message", [
    ("5", "--labels 5: a class-balanced subset needs at least one image of each of the 10 classes"),
    ("10,2000", "--labels 2000 exceeds the 1292 training images outside the validation split"),
])
def test_label_counts_the_data_cannot_give(runs, tmp_path, labels, message):
    out = tmp_path / "out"
    with pytest.raises(UsageError, match=message):
        classify.main([runs["digits"], "--labels", labels, "--out", str(out)])
    assert not out.exists()


@pytest.mark.slow  # spawns processes or trains and exports end to end
def test_not_a_run_directory(tmp_path, warm_interpreter):
    result = _cli(warm_interpreter, str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == f"training.classify: error: {tmp_path} is not a run directory: it has no config.json (training.fit writes one).\n"
    assert os.listdir(tmp_path) == []


def test_help_reads_as_documentation():
    text = " ".join(classify.build_parser().format_help().split())
    assert "%%" not in text and "(default: 10,50,100,500,1000,all)" in text
    assert "(default: pre_stack)" in text and "--no-supervised" in text


def test_a_run_in_use_is_not_classified(runs, tmp_path, capsys):
    out = str(tmp_path / "out")
    with RunDir(runs["digits"]).lock():  # training.fit holds it
        code, _, err = call_main(classify.main, [runs["digits"], "--labels", "10", "--seeds", "1", "--epochs", "1",
                                                "--no-supervised", "--out", out], "training.classify", capsys)
    assert code == 2
    assert f"{runs['digits']} is in use by process {os.getpid()}" in err
    assert not os.path.exists(out)
