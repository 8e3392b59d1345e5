"""`python -m training.evaluate` on tiny shapes and digits runs trained once for the module."""

import hashlib
import json
import os
import shutil
import subprocess

import keras
import numpy as np
import pytest
from PIL import Image

from irmae_keras import fid
from irmae_keras import sampling
from export.errors import UsageError
from tests.helpers import TINY_RUN
from tests.helpers import call_main
from tests.helpers import graph_functions
from tests.helpers import make_run
from tests.helpers import sha256_of
from training import data
from training import evaluate
from training.config import RunConfig
from training.evaluation import evaluation
from training.rundir import EVALUATION_DIR
from training.rundir import RunDir
EVAL = TINY_RUN["eval_size"]  # the session runs' eval images
GRID_FILES = ("reconstruction.png", "interpolation.png", "mvg.png", "gmm.png", "pca.png")


@pytest.fixture(scope="module")
def runs(tiny_runs):
    """The session's tiny runs: shapes IRMAE, shapes AE (for --compare) and digits IRMAE."""
    return tiny_runs


@pytest.fixture(autouse=True)
def _graph_mode(graph_mode):
    """The extractor trains with model.fit, as in a user's process."""


@pytest.fixture(scope="module")
def shapes_evaluation(runs):
    """`--task all --compare` on the shapes run: (document, results)."""
    with graph_functions():
        settings = evaluate.parse_settings([runs["shapes"], "--compare", runs["shapes_ae"]])
        document, results = evaluation.evaluate(settings)
    return document, results


def _out(run_dir):
    return RunDir(run_dir).file(EVALUATION_DIR)


def _read_json(run_dir):
    with open(os.path.join(_out(run_dir), "evaluation.json")) as handle:
        return json.load(handle)


def _png(path):
    with Image.open(path) as image:
        return image.mode, image.size, np.asarray(image)


def _eval_images(run_dir, count=EVAL):
    config = RunConfig.load(run_dir)
    return data.load_arrays(config.dataset, "eval", limit=count, seed=config.seed)


def _model(run_dir):
    return keras.models.load_model(RunDir(run_dir).model_path)


def _codes(model, images):
    return keras.ops.convert_to_numpy(model.encoder(images)).astype(np.float64)


class TestAllTasksOnShapes:
    def test_every_file_is_written_and_named_in_the_json(self, runs, shapes_evaluation):
        document, _ = shapes_evaluation
        out = _out(runs["shapes"])
        assert sorted(os.listdir(out)) == sorted(
            GRID_FILES + ("spectrum.png", "spectrum_compare.png", "domain_features.keras", "evaluation.json"))
        assert _read_json(runs["shapes"]) == document
        for task in ("spectrum", "reconstruction", "interpolation", "mvg", "gmm", "pca"):
            assert os.path.isfile(os.path.join(out, document[task]["figure"]))
        assert document["run"]["dataset"] == "shapes" and document["run"]["model"] == "irmae"
        assert document["model_sha256"] == sha256_of(RunDir(runs["shapes"]).model_path)

    def test_grids_are_ten_by_ten_rgb_images_of_32_pixels(self, runs, shapes_evaluation):
        for name in GRID_FILES:
            mode, size, _ = _png(os.path.join(_out(runs["shapes"]), name))
            assert (mode, size) == ("RGB", (320, 320)), name

    def test_spectrum_matches_the_codes_of_the_eval_images(self, runs, shapes_evaluation):
        spectrum = shapes_evaluation[0]["spectrum"]
        codes = _codes(_model(runs["shapes"]), _eval_images(runs["shapes"]))
        values = np.array(spectrum["singular_values"])
        eigenvalues = np.linalg.eigvalsh(np.cov(codes.T))[::-1]
        np.testing.assert_allclose(values, eigenvalues / eigenvalues[0], rtol=1e-4, atol=1e-8)
        assert spectrum["effective_rank"] == int(np.sum(values > 0.01))
        assert 1.0 <= spectrum["entropy_rank"] <= 4.0
        assert (spectrum["num_codes"], spectrum["latent_dim"], spectrum["intrinsic_dimension"]) == (EVAL, 4, 7)

    def test_reconstruction_mse_and_grid_rows(self, runs, shapes_evaluation):
        entry = shapes_evaluation[0]["reconstruction"]
        images = _eval_images(runs["shapes"])
        model = _model(runs["shapes"])
        reconstructions = np.clip(keras.ops.convert_to_numpy(model(images)), 0, 1)
        assert entry["num_images"] == EVAL
        np.testing.assert_allclose(entry["mse"], np.mean((reconstructions - images) ** 2), rtol=1e-5)
        _, _, grid = _png(os.path.join(_out(runs["shapes"]), "reconstruction.png"))
        # Row 0: the first 10 originals; row 1: their reconstructions; row 8: images 40..49.
        first_row = np.concatenate(list(images[:10]), axis=1)
        np.testing.assert_allclose(grid[:32], np.round(first_row * 255), atol=1)
        second_row = np.concatenate(list(reconstructions[:10]), axis=1)
        np.testing.assert_allclose(grid[32:64], np.round(second_row * 255), atol=1)
        np.testing.assert_allclose(grid[256:288], np.round(np.concatenate(list(images[40:50]), axis=1) * 255), atol=1)

    def test_interpolation_rows_run_from_one_reconstruction_to_another(self, runs, shapes_evaluation):
        entry = shapes_evaluation[0]["interpolation"]
        assert entry["pairs"] == [[k, k + 10] for k in range(10)] and entry["steps"] == 10
        images = _eval_images(runs["shapes"])
        model = _model(runs["shapes"])
        reconstructions = np.clip(keras.ops.convert_to_numpy(model(images[:20])), 0, 1)
        _, _, grid = _png(os.path.join(_out(runs["shapes"]), "interpolation.png"))
        for k in (0, 9):
            row = grid[32 * k:32 * (k + 1)]
            np.testing.assert_allclose(row[:, :32], np.round(reconstructions[k] * 255), atol=1)
            np.testing.assert_allclose(row[:, -32:], np.round(reconstructions[k + 10] * 255), atol=1)

    def test_samplers_record_their_settings(self, shapes_evaluation):
        document = shapes_evaluation[0]
        assert document["mvg"]["fitted_on_codes"] == EVAL and document["mvg"]["seed"] == 0
        gmm = document["gmm"]
        assert (gmm["n_components"], gmm["covariance_type"], gmm["max_iter"]) == (4, "full", 100)
        assert 1 <= gmm["em_iterations"] <= 100 and abs(sum(gmm["weights"]) - 1) < 1e-9
        pca = document["pca"]
        assert pca["n_components"] == 4 and pca["extent_stddevs"] == 2.0
        assert pca["stddevs"] == sorted(pca["stddevs"], reverse=True)
        assert 0 < sum(pca["explained_variance_ratio"]) <= 1 + 1e-9  # 4 of 4 components: all of it
        assert sum(pca["explained_variance_ratio"]) == pytest.approx(1.0, abs=1e-6)

    def test_fid_follows_the_protocol(self, runs, shapes_evaluation):
        entry = shapes_evaluation[0]["fid"]
        assert entry["num_images"] == EVAL and entry["seed"] == 0
        assert entry["extractor"]["name"] == "domain_cnn" and entry["extractor"]["trained_now"]
        assert entry["extractor"]["training"]["targets"] == "factors"
        assert entry["extractor"]["training"]["train_images"] == 64  # the run's train size
        values = entry["values"]
        assert set(values) == {"mvg", "gmm", "interpolation", "reconstruction", "train_images"}
        assert all(np.isfinite(v) and v >= 0 for v in values.values())
        # Real shapes against real shapes is far closer than a two-epoch model's output.
        assert values["train_images"] < values["reconstruction"]
        # Recomputed from the stored extractor: the same images, samplers and seed.
        extractor = fid.DomainFeatures.load(os.path.join(_out(runs["shapes"]), "domain_features.keras"))
        images = _eval_images(runs["shapes"])
        model = _model(runs["shapes"])
        codes = _codes(model, images)
        np.testing.assert_allclose(
            fid.fid(images, sampling.decode(model, codes), extractor), values["reconstruction"], rtol=1e-3)
        mvg = sampling.generate(model, sampling.MultivariateGaussianSampler().fit(codes), n=EVAL, seed=0)
        np.testing.assert_allclose(fid.fid(images, mvg, extractor), values["mvg"], rtol=1e-3)

    def test_compare_overlays_both_runs_with_the_intrinsic_dimension(self, runs, shapes_evaluation):
        document, results = shapes_evaluation
        rows = document["spectrum_compare"]["runs"]
        assert [row["run_name"] for row in rows] == ["tiny-shapes", "tiny-shapes_ae"]
        assert rows[0]["effective_rank"] == document["spectrum"]["effective_rank"]
        assert document["spectrum_compare"]["intrinsic_dimension"] == 7
        axes = results.figures["spectrum_compare.png"].axes[0]
        labels = [text.get_text() for text in axes.get_legend().get_texts()]
        assert labels[:2] == [f"tiny-shapes (irmae, l=2): rank {rows[0]['effective_rank']}",
                              f"tiny-shapes_ae (ae, l=0): rank {rows[1]['effective_rank']}"]
        assert any(list(line.get_xdata()) == [7, 7] for line in axes.lines)
        mode, size, _ = _png(os.path.join(_out(runs["shapes"]), "spectrum_compare.png"))
        assert size == (640, 440)


class TestMergingAndReuse:
    def test_a_later_task_keeps_earlier_results_and_reuses_the_extractor(self, runs, shapes_evaluation, capsys):
        before = _read_json(runs["shapes"])
        extractor_path = os.path.join(_out(runs["shapes"]), "domain_features.keras")
        stamp = os.path.getmtime(extractor_path)
        evaluate.main([runs["shapes"], "--task", "gmm", "--seed", "3"])
        after = _read_json(runs["shapes"])
        assert after["gmm"]["seed"] == 3
        for key in ("spectrum", "reconstruction", "fid", "spectrum_compare", "mvg"):
            assert after[key] == before[key], key
        evaluate.main([runs["shapes"], "--task", "fid"])
        again = _read_json(runs["shapes"])["fid"]
        assert not again["extractor"]["trained_now"]
        assert again["extractor"]["sha256"] == hashlib.sha256(open(extractor_path, "rb").read()).hexdigest()
        assert os.path.getmtime(extractor_path) == stamp
        # The same extractor, images, samplers and seed: the same numbers.
        for name, value in before["fid"]["values"].items():
            assert again["values"][name] == pytest.approx(value, rel=1e-6), name
        assert "domain_features.keras" not in capsys.readouterr().out.splitlines()[-1]

    def test_results_of_another_model_are_dropped(self, runs, shapes_evaluation, tmp_path, capsys):
        copy = str(tmp_path / "copy")
        shutil.copytree(runs["shapes"], copy)
        shutil.copy(RunDir(runs["shapes_ae"]).model_path, RunDir(copy).model_path)
        evaluate.main([copy, "--task", "spectrum"])
        document = _read_json(copy)
        assert set(document) == {"spectrum", "run", "model_sha256", "updated"}
        assert "changed since the last evaluation" in capsys.readouterr().out

    def test_another_runs_extractor_scores_with_the_same_network(self, runs, shapes_evaluation, tmp_path):
        shared = os.path.join(_out(runs["shapes"]), "domain_features.keras")
        out = str(tmp_path / "ae")
        evaluate.main([runs["shapes_ae"], "--task", "fid", "--domain-features", shared, "--out", out])
        entry = json.load(open(os.path.join(out, "evaluation.json")))["fid"]
        assert entry["extractor"]["file"] == os.path.abspath(shared) and not entry["extractor"]["trained_now"]
        assert os.listdir(out) == ["evaluation.json"]  # nothing trained, nothing copied

    def test_an_extractor_of_other_images_is_refused(self, runs, shapes_evaluation, tmp_path):
        shared = os.path.join(_out(runs["shapes"]), "domain_features.keras")
        with pytest.raises(UsageError, match=r"takes images of shape \(32, 32, 3\), this run's are \(32, 32, 1\)"):
            evaluate.main([runs["digits"], "--task", "fid", "--domain-features", shared,
                           "--out", str(tmp_path / "out")])
        assert not (tmp_path / "out").exists()


class TestDigits:
    def test_all_tasks_on_grayscale_digits(self, runs, capsys):
        evaluate.main([runs["digits"], "--num-samples", "40", "--seed", "1"])
        document = _read_json(runs["digits"])
        for name in GRID_FILES:
            mode, size, _ = _png(os.path.join(_out(runs["digits"]), name))
            assert (mode, size) == ("L", (320, 320)), name
        assert document["spectrum"]["intrinsic_dimension"] is None
        assert document["spectrum"]["num_codes"] == EVAL and len(document["spectrum"]["singular_values"]) == 4
        entry = document["fid"]
        assert entry["num_images"] == 40 and entry["seed"] == 1 and entry["num_train_images"] == 40
        assert entry["extractor"]["training"]["targets"] == "class"
        assert entry["values"]["train_images"] < entry["values"]["reconstruction"]
        output = capsys.readouterr().out
        assert "FID (domain_cnn, N=40, seed 1)" in output and "effective rank" in output


@pytest.mark.slow
def test_inception_features_from_a_weights_file(runs, tmp_path, monkeypatch):
    """--inception-weights FILE loads that file (its md5 made the expected one here)."""
    network = keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg")
    weights = str(tmp_path / "inception.weights.h5")
    network.save_weights(weights)
    monkeypatch.setattr(fid, "INCEPTION_WEIGHTS_MD5", hashlib.md5(open(weights, "rb").read()).hexdigest())
    settings = evaluate.parse_settings(
        [runs["shapes"], "--task", "fid", "--features", "inception", "--inception-weights", weights,
         "--out", str(tmp_path / "out")])
    extractor = evaluation.build_extractor(None, settings)
    assert extractor.info == {"name": "inception_v3", "features": "inception", "weights_file": weights}
    for mine, loaded in zip(network.weights[:5], extractor.features.model.weights[:5]):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(loaded))


# --- bad input: one line on stderr, exit 2, nothing written ------------------------------


def _cli(warm_interpreter, *args, timeout=300):
    """`python -m training.evaluate ARGS` in a process (forked from the warm interpreter)."""
    return warm_interpreter.cli("training.evaluate", *args, timeout=timeout)


def _refused(result, message):
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("training.evaluate: error: ")
    assert message in result.stderr, result.stderr
    assert result.stdout == ""


@pytest.mark.slow  # spawns processes
@pytest.mark.parametrize("args, message", [
    (["--task", "bogus"], "argument --task: invalid choice: 'bogus'"),
    (["--num-samples", "1"], "--num-samples must be an integer >= 2 (a covariance needs 2 images); got 1."),
    (["--eval-size", "3"], "--eval-size must be an integer >= 5 for --task all; got 3."),
    (["--compare", "{missing}"], "{missing} does not exist"),
    (["--task", "gmm", "--compare", "{run}"], "--compare goes with --task spectrum or all"),
    (["--features", "domain", "--inception-weights", "{run}/config.json"], "--inception-weights goes with --features inception"),
])
def test_bad_flags_are_refused_before_any_work(runs, tmp_path, args, message, warm_interpreter):
    out = str(tmp_path / "out")
    fill = {"missing": str(tmp_path / "missing"), "run": runs["shapes"]}
    result = _cli(warm_interpreter, runs["shapes"], *[a.format(**fill) for a in args], "--out", out)
    _refused(result, message.format(**fill))
    assert not os.path.exists(out)


@pytest.mark.slow  # spawns processes or trains and exports end to end
def test_a_directory_that_is_not_a_run_is_refused(tmp_path, warm_interpreter):
    notes = RunDir(str(tmp_path / "notes"))
    os.mkdir(notes.path)
    with open(notes.config_path, "w") as handle:
        handle.write("{}")
    _refused(_cli(warm_interpreter, notes.path), f"is not a run directory: it has no {os.path.basename(notes.model_path)}")
    assert os.listdir(notes.path) == [os.path.basename(notes.config_path)]


def test_a_gmm_that_does_not_converge_writes_nothing(runs, tmp_path, capsys):
    out = str(tmp_path / "out")
    code, stdout, stderr = call_main(  # in-process: what `python -m` runs
        evaluate.main, [runs["digits"], "--task", "gmm", "--gmm-max-iter", "1", "--out", out],
        "training.evaluate", capsys)
    _refused(subprocess.CompletedProcess([], code, stdout, stderr),
             "the gmm sampler cannot be fitted on 64 eval codes")
    assert "did not converge in `max_iter`=1" in stderr and "--gmm-max-iter" in stderr
    assert not os.path.exists(out)


def test_a_failing_task_after_others_writes_nothing(runs, tmp_path, monkeypatch):
    def diverging_fit(self, codes):
        raise ValueError("forced non-convergence")

    monkeypatch.setattr(sampling.GaussianMixtureSampler, "fit", diverging_fit)
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="gmm sampler cannot be fitted.*forced non-convergence"):
        evaluate.main([runs["shapes"], "--out", str(out)])  # spectrum .. mvg were computed first
    assert not out.exists()


def test_missing_inception_weights_offline(runs, tmp_path, monkeypatch):
    if os.path.exists(os.path.join("/tmp/.keras/models", fid.INCEPTION_WEIGHTS_FILE)):
        pytest.skip("this machine has the InceptionV3 weights cached")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="--features inception: InceptionV3 weights not found .*--inception-weights FILE; or score with --features domain"):
        evaluate.main([runs["shapes"], "--task", "fid", "--features", "inception", "--out", str(out)])
    assert not out.exists()


def test_a_file_that_is_not_the_inception_weights(runs, tmp_path):
    weights = tmp_path / "weights.h5"
    weights.write_bytes(b"not weights")
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="is not Keras' InceptionV3 no-top weights file"):
        evaluate.main([runs["shapes"], "--task", "fid", "--features", "inception",
                       "--inception-weights", str(weights), "--out", str(out)])
    assert not out.exists()


def test_an_unreadable_evaluation_json_is_kept(runs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "evaluation.json").write_text("{broken")
    with pytest.raises(UsageError, match="cannot read .*evaluation.json to merge into it"):
        evaluate.main([runs["shapes"], "--task", "spectrum", "--out", str(out)])
    assert os.listdir(out) == ["evaluation.json"] and (out / "evaluation.json").read_text() == "{broken"


@pytest.mark.parametrize("run_eval_size, used", [(None, 10_000), (2_000, 2_000), (32, 32)])
def test_the_default_eval_size_follows_the_run(tmp_path, run_eval_size, used):
    # parse_settings does not load the model
    run = make_run(tmp_path / "run", model_bytes=b"", dataset="shapes", eval_size=run_eval_size)
    settings = evaluate.parse_settings([run.path])
    assert settings.eval_size == used and settings.features == "domain"
    assert settings.tasks == evaluation.TASKS and settings.out == run.file(EVALUATION_DIR)


def test_help_reads_as_documentation():
    text = " ".join(evaluate.build_parser().format_help().split())
    assert "%%" not in text and "what to compute (default: all)" in text
    assert "generated ones, at least 2, at most the eval images used (default: 10000)" in text
    assert all(f" {task} " in text for task in ("spectrum", "reconstruction", "interpolation", "pca", "fid"))


class TestEvalSizeRules:
    @pytest.fixture
    def fake_run(self, tmp_path):
        return make_run(tmp_path / "run", model_bytes=b"", dataset="shapes", eval_size=24).path

    def test_each_task_needs_only_what_it_uses(self, fake_run):
        assert evaluate.parse_settings([fake_run, "--task", "spectrum", "--eval-size", "2"]).eval_size == 2
        assert evaluate.parse_settings([fake_run, "--task", "spectrum"]).eval_size == 24  # the run's
        with pytest.raises(UsageError, match="--eval-size must be an integer >= 5 for --task pca; got 4"):
            evaluate.parse_settings([fake_run, "--task", "pca", "--eval-size", "4"])

    def test_a_size_that_cannot_fit_in_memory_is_refused_before_any_work(self, fake_run, tmp_path):
        with pytest.raises(UsageError, match=r"--eval-size 1000000000 needs about .* GiB .* use at most \d+"):
            evaluate.parse_settings([fake_run, "--eval-size", "1000000000", "--out", str(tmp_path / "o")])
        assert not (tmp_path / "o").exists()

    def test_grids_shrink_to_a_small_eval_set(self):
        import irmae_keras
        from tests.helpers import random_images

        model = irmae_keras.build_autoencoder("shapes", latent_dim=4)
        images = random_images((32, 32, 3), batch=12)
        run = evaluation.EvaluatedRun("run", None, model, images, np.asarray(model.encoder(images), "float64"))
        results = evaluation.Results()
        evaluation.reconstruction_task(run, None, results)
        evaluation.interpolation_task(run, None, results)
        assert results.grids["reconstruction.png"].shape[:2] == (2 * 32, 10 * 32)  # 10 pairs shown
        assert results.grids["interpolation.png"].shape[0] == 6 * 32  # 6 pairs of the 12 images
        assert results.entries["reconstruction"]["num_images"] == 12


@pytest.mark.slow  # spawns processes or trains and exports end to end
class TestFolder:
    def test_the_default_features_work_offline_on_a_folder_of_unlabelled_images(self, tmp_path, capsys):
        """A user's own images: FID by default with the domain network trained on the
        images' rotations (InceptionV3's weights are not there offline)."""
        from tests.helpers import square_images
        from training.trainer import train

        folder = tmp_path / "photos"
        folder.mkdir()
        for index, image in enumerate(square_images((32, 32, 3), batch=80, seed=3)):
            Image.fromarray((image * 255).astype("uint8")).save(folder / f"{index:03d}.png")
        settings = dict(TINY_RUN, train_size=None, eval_size=None)
        with graph_functions():
            run_dir = train(RunConfig(dataset="folder", data_dir=str(folder), architecture="shapes",
                                      output_dir=str(tmp_path / "runs"), **settings), quiet=True).run_dir
            evaluate.main([run_dir, "--task", "fid", "--num-samples", "8"])
        entry = _read_json(run_dir)["fid"]
        assert entry["extractor"]["features"] == "domain"
        assert entry["extractor"]["training"]["targets"] == "rotation"
        assert f"FID (domain_cnn, N={entry['num_images']}" in capsys.readouterr().out


class TestTheRunIsLockedAndNeverLinked:
    def test_a_run_in_use_by_training_is_not_evaluated(self, runs, tmp_path, capsys):
        out = str(tmp_path / "out")
        with RunDir(runs["shapes"]).lock():  # training.fit holds it
            code, _, stderr = call_main(evaluate.main, [runs["shapes"], "--task", "spectrum", "--out", out],
                                        "training.evaluate", capsys)
        assert code == 2
        assert f"{runs['shapes']} is in use by process {os.getpid()}" in stderr
        assert not os.path.exists(out)

    def test_a_compared_run_in_use_is_not_read_and_one_run_twice_is_one_lock(self, runs, tmp_path):
        from training.rundir import RunDir

        out = str(tmp_path / "out")
        with RunDir(runs["shapes_ae"]).lock():
            with pytest.raises(UsageError, match="is in use by process"):
                evaluation.evaluate(evaluate.parse_settings(
                    [runs["shapes"], "--task", "spectrum", "--compare", runs["shapes_ae"], "--out", out]))
        os.symlink(runs["shapes"], tmp_path / "alias")
        document, _ = evaluation.evaluate(evaluate.parse_settings(
            [runs["shapes"], "--task", "spectrum", "--compare", str(tmp_path / "alias"), "--out", out]))
        assert len(document["spectrum_compare"]["runs"]) == 2

    def test_a_linked_evaluation_folder_is_refused(self, tmp_path):
        run = make_run(tmp_path / "run", model_bytes=b"", dataset="shapes")
        (tmp_path / "elsewhere").mkdir()
        os.symlink(tmp_path / "elsewhere", run.file(EVALUATION_DIR))
        with pytest.raises(UsageError, match=rf"{run.file(EVALUATION_DIR)} is a symbolic link"):
            evaluate.parse_settings([run.path, "--task", "spectrum"])
        assert os.listdir(tmp_path / "elsewhere") == []
