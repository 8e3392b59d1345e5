"""Each experiment's smallest configuration end to end, and the report built from them."""

import copy
import dataclasses
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from irmae_keras import analysis
from training.experiments import budgets
from training.experiments import context
from training.experiments import figures
from training.experiments import optimizer as optimizer_experiment
from training.experiments import registry
from training.experiments import report
from training.experiments import runner
from training.experiments import tables
from training.rundir import RunDir
from training.config import RunConfig

pytestmark = pytest.mark.slow

SMOKE = budgets.BUDGETS["smoke"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    return {"runs": str(root / "runs"), "out": str(root / "results"), "report": str(root / "results.md")}


def _run(name, dirs):
    document = runner.run_experiment(name, SMOKE, dirs["runs"], dirs["out"])
    folder = os.path.join(dirs["out"], name)
    saved = json.load(open(os.path.join(folder, "results.json")))
    assert saved["experiment"] == name and saved["budget"]["name"] == "smoke"
    assert saved["command"] == f"python -m training.experiments {name} --budget smoke"
    assert saved["hardware"]["cores"] >= 1 and saved["seconds"]["this_call"] > 0
    assert open(os.path.join(folder, "table.md")).read().strip() == document["table"]
    for file_name, caption in saved["figures"]:
        with Image.open(os.path.join(folder, file_name)) as image:
            assert image.size[0] > 50 and image.size[1] > 50, file_name
        assert caption
    return saved


def _labels(document):
    return [row["label"] for row in document["rows"]]


def test_shapes_rank(dirs):
    document = _run("shapes-rank", dirs)
    assert sorted(set(_labels(document))) == sorted(["AE", "AE+L1", "AE+L2", "VAE", "IRMAE l=2", "IRMAE l=4"])
    assert [row["seed"] for row in document["rows"] if row["label"] == "IRMAE l=2"] == list(SMOKE.seeds)
    for row in document["rows"]:
        assert 1 <= row["effective_rank"] <= row["config"]["latent_dim"]
        assert len(row["singular_values"]) == row["config"]["latent_dim"] and row["mse"] > 0
    assert [f for f, _ in document["figures"]] == ["spectra.png", "interpolation.png",
                                                   "rank_over_training.png"]
    with Image.open(os.path.join(dirs["out"], "shapes-rank", "interpolation.png")) as image:
        zoom = figures.FIGURE_ZOOM
        assert image.size == (32 * 10 * zoom, 32 * 6 * zoom)  # 10 steps × the 6 models
    with Image.open(os.path.join(dirs["out"], "shapes-rank", "rank_over_training.png")) as image:
        assert image.size == (640, 400)  # 6.4 × 4 inches at 100 dpi


def test_training_length(dirs):
    document = _run("training-length", dirs)
    steps = {"short": 64 // 32 * 1, "long": SMOKE.long_run["train_size"] // 32 * SMOKE.long_run["epochs"]}
    assert _labels(document) == [f"AE, {steps['short']} steps", f"IRMAE l=2, {steps['short']} steps",
                                 f"AE, {steps['long']} steps", f"IRMAE l=2, {steps['long']} steps"]
    assert [row["steps"] for row in document["rows"]] == [steps["short"]] * 2 + [steps["long"]] * 2
    # The short runs are shapes-rank's, reused; the long ones log a rank after every epoch.
    assert document["rows"][0]["run_name"] == budgets.make_config(SMOKE, "shapes", "ae").run_name
    assert [len(row["rank_by_epoch"]) for row in document["rows"]] == [1, 1, 2, 2]
    assert all(0 <= row["colour_kept"] <= 5 for row in document["rows"])
    assert "| colour kept |" in document["table"]
    assert [f for f, _ in document["figures"]] == ["rank_over_training.png", "spectra.png",
                                                   "reconstructions.png"]
    with Image.open(os.path.join(dirs["out"], "training-length", "reconstructions.png")) as image:
        zoom = figures.FIGURE_ZOOM
        assert image.size == (32 * 10 * zoom, 32 * 5 * zoom)  # the eval images + 4 models


def test_colour_ratio_is_zero_for_grey_and_one_for_the_images():
    import numpy as np

    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 3)).astype("float32")
    grey = np.repeat(images.mean(axis=-1, keepdims=True), 3, axis=-1)
    assert analysis.colour_kept(grey, images) == 0.0
    assert analysis.colour_kept(images, images) == 1.0
    half = grey + 0.5 * (images - grey)
    assert abs(analysis.colour_kept(half, images) - 0.5) < 1e-6
    # Noise on a black background is not colour.
    images[:, :4] = 0.0
    noisy = images.copy()
    noisy[:, :4] = np.random.default_rng(1).uniform(0, 0.1, size=noisy[:, :4].shape)
    assert analysis.colour_kept(noisy, images) == 1.0


def test_init_scale(dirs):
    document = _run("init-scale", dirs)
    assert _labels(document) == ["init ×0.1", "init ×0.3", "init ×1", "init ×3", "glorot_uniform"]
    configs = [row["config"] for row in document["rows"]]
    assert [c["init_scale"] for c in configs] == [0.1, 0.3, 1.0, 3.0, 1.0]
    assert configs[-1]["stack_initializer"] == "glorot_uniform"


def test_depth(dirs):
    document = _run("depth", dirs)
    assert [row["config"]["linear_layers"] for row in document["rows"]] == [0, 1, 2, 4, 8]
    for row in document["rows"]:
        assert set(row["fid"]) >= {"mvg", "gmm", "reconstruction", "interpolation"}
        assert all(value >= 0 for value in row["fid"].values())


def test_tying(dirs):
    document = _run("tying", dirs)
    configs = {row["label"]: row["config"] for row in document["rows"]}
    assert configs["shared (W·W)"]["tying"] == "shared"
    assert configs["transpose (W·Wᵀ)"]["tying"] == "transpose"
    assert configs["frozen random"]["freeze_stack"] is True
    assert configs["nonlinear (ReLU between)"]["stack_activation"] == "relu"


def test_optimizer_tunes_each_learning_rate(dirs):
    document = _run("optimizer", dirs)
    sweep = [row for row in document["rows"] if row["group"] == "sweep"]
    tuned = [row for row in document["rows"] if row["group"] != "sweep"]
    assert len(sweep) == sum(len(rates) for rates in SMOKE.learning_rates.values())
    for row in tuned:
        name = row["config"]["optimizer"]
        candidates = [r for r in sweep if r["config"]["optimizer"] == name]
        assert row["config"]["lr"] == min(candidates, key=lambda r: r["mse"])["config"]["lr"]
        assert row["mean_image_mse"] > 0
        assert row["trained"] == (row["mse"] < optimizer_experiment.TRAINED_MSE * row["mean_image_mse"])
    assert all(isinstance(row["trained"], bool) for row in sweep)
    assert "| left the mean image |" in document["table"]
    assert "conv_0/kernel" in document["notes"][1] and "kernel_1" in document["notes"][1]
    assert "Sweep:" in document["notes"][-1]
    adam = [r["config"]["lr"] for r in tuned if r["config"]["optimizer"] == "adam"][0]
    side = "largest" if adam == max(SMOKE.learning_rates["adam"]) else "smallest"
    # adam's sweep has two rates, so its tuned rate is at an end; sgd's and rmsprop's one rate is not.
    assert f"untried: adam ({adam:g}, the {side})." in document["notes"][-1]


def test_initial_gradients_name_every_kernel_in_layer_order():
    config = budgets.make_config(SMOKE, "shapes")
    gradients = optimizer_experiment.initial_gradients(config, count=8)
    names = list(gradients)
    assert names[0] == "conv_0/kernel" and names[-1] == "deconv_4/kernel"
    assert {"linear_stack/kernel_0", "linear_stack/kernel_1"} <= set(names)
    assert not any(name.endswith("bias") for name in names)
    assert all(value > 0 for value in gradients.values())
    # The official init: the loss barely reaches the encoder's first kernel.
    assert gradients["conv_0/kernel"] < 1e-3 * gradients["deconv_4/kernel"]


def test_latent_size(dirs):
    document = _run("latent-size", dirs)
    assert _labels(document) == ["AE n=4", "AE n=7", "AE n=8", "AE n=16", "AE n=32",
                                 "VAE n=4", "VAE n=7", "VAE n=16", "VAE n=32", "IRMAE n=32 l=2"]
    assert all("gmm" in row["fid"] for row in document["rows"])


def test_downstream(dirs):
    document = _run("downstream", dirs)
    methods = set(_labels(document))
    assert methods == {"AE", "VAE", "IRMAE", "supervised"}
    for row in document["rows"]:
        assert 0 <= row["test_error"] <= 100 and row["seeds"] == SMOKE.classify_seeds
    assert "| labels |" in document["table"]


def test_generation(dirs):
    document = _run("generation", dirs)
    assert {(row["group"], row["label"]) for row in document["rows"]} == {
        (d, m) for d in ("shapes", "digits") for m in ("AE", "VAE", "IRMAE")}
    for row in document["rows"]:
        assert set(row["fid"]) >= {"reconstruction", "interpolation", "mvg", "gmm", "pca", "train_images"}
    assert len(document["figures"]) == 6


def test_report_from_all_experiments(dirs):
    documents = runner.load_documents(dirs["out"])
    assert set(documents) == set(registry.EXPERIMENTS)  # the tests above ran them all
    report.write_report(documents, dirs["out"], dirs["report"])
    text = open(dirs["report"]).read()
    summary = [line for line in text.splitlines() if line[:3] in {f"{i}. " for i in range(1, 6)}]
    assert len(summary) == 5 and not any("not run yet" in line for line in summary)
    for name in registry.EXPERIMENTS:
        assert f"## {name}:" in text
    assert "results/shapes-rank/spectra.png" in text


def test_the_report_puts_the_paper_budgets_pair_beside_this_ones(dirs):
    documents = runner.load_documents(dirs["out"])
    report.write_report(documents, dirs["out"], dirs["report"])
    text = open(dirs["report"]).read()
    assert "has not been run to the end here" in text.splitlines()[2]  # summary line 1
    assert "training-length --budget paper" in text
    # The same pair as if the paper budget had trained it, with other numbers.
    paper = copy.deepcopy(documents["training-length"])
    paper["budget"]["name"] = "paper"
    paper["rows"] = paper["rows"][:2]  # AE and IRMAE l=2 at one length, as the paper budget trains them
    for row in paper["rows"]:
        row.update(steps=report.PAPER_STEPS, effective_rank={"AE": 15, "IRMAE l=2": 7}[row["group"]])
    report.write_report(documents, dirs["out"], dirs["report"], others={"paper": {"training-length": paper}})
    text = open(dirs["report"]).read()
    assert "## Fig. 2's pair at each budget, beside the paper" in text
    assert f" paper budget, {report.PAPER_STEPS:,} steps |" in text
    assert "| effective rank, IRMAE l=2 / AE | 7 / 17 |" in text and "7 / 15 |" in text
    line = text.splitlines()[2]
    assert "**At the paper's budget**" in line and "the paper's gap is reproduced" in line
    assert "IRMAE's rank is the paper's 7" in line
    assert "results/paper/training-length/rank_over_training.png" in text
    for row in paper["rows"]:
        row["effective_rank"] = {"AE": 15, "IRMAE l=2": 6}[row["group"]]
    report.write_report(documents, dirs["out"], dirs["report"], others={"paper": {"training-length": paper}})
    assert "IRMAE's rank is 1 below the paper's 7" in open(dirs["report"]).read().splitlines()[2]


def test_the_paper_budget_spectra_are_counted_at_several_thresholds():
    """Why a rank may differ from the paper's: the threshold, the eval set's size, a rank
    still rising; each said from the runs' own numbers."""
    ae = [1.0, 0.5, 0.04, 0.008, 0.004, 0.0008, 0.0001]
    irmae = [1.0, 0.3, 0.02, 0.0005, 0.0001, 0.00001, 0.0]
    rows = [dict(group="AE", steps=report.PAPER_STEPS, singular_values=ae, effective_rank=3,
                 rank_by_epoch=[1] * 10 + [2] * 8 + [3] * 2, num_codes=10_000),
            dict(group="IRMAE l=2", steps=report.PAPER_STEPS, singular_values=irmae, effective_rank=3,
                 rank_by_epoch=[3] * 20, num_codes=10_000)]
    text = "\n".join(report.thresholds_section({"rows": rows}))
    assert "| 5% | 2 | 2 | 7 | 17 |" in text
    assert "| 1% (used on this page) | 3 | 3 | 7 | 17 |" in text
    assert "| 0.1% | 3 | 5 | 7 | 17 |" in text
    assert "No threshold here gives the AE the paper's 17" in text
    assert "IRMAE l=2 is not below the AE at every threshold" in text
    assert "the last epoch's 1,000 monitored eval images give 3 / 3" in text
    assert "still rising at the end (2 → 3 over the last 2 epochs)" in text
    assert report.thresholds_section({"rows": rows[:1]}) == []  # the pair is incomplete


def test_finished_runs_give_the_pair_without_their_models(dirs):
    """The paper budget's CPU path commits each finished run's own results, not its model:
    the pair's rows then come from the runs' end-of-training evaluation, which is the
    experiment's own on the same eval images."""
    from training.experiments import training_length

    document = training_length.runs_document(SMOKE, dirs["runs"])
    assert document["source"] == "runs" and document["runs_dir"] == dirs["runs"]
    assert document["adam_epsilon_placement"] == "pytorch"
    assert document["hardware"]["cores"] >= 1  # config.json records the machine
    assert all(row["hardware"] == document["hardware"] for row in document["rows"])
    evaluated = {row["run_name"]: row for row in runner.load_documents(dirs["out"])["training-length"]["rows"]}
    assert [row["run_name"] for row in document["rows"]] == list(evaluated)
    for row in document["rows"]:
        other = evaluated[row["run_name"]]
        assert (row["label"], row["group"], row["steps"]) == (other["label"], other["group"], other["steps"])
        assert row["effective_rank"] == other["effective_rank"]
        assert row["rank_by_epoch"] == other["rank_by_epoch"]
        assert row["mse"] == pytest.approx(other["mse"], rel=1e-4)
        assert row["colour_kept"] == pytest.approx(other["colour_kept"], rel=1e-3)
    # An unfinished run does not count; no finished run, no document.
    assert training_length.runs_document(SMOKE, os.path.join(dirs["runs"], "nothing-here")) is None


def test_the_cpu_page_shows_a_paper_budget_run_committed_without_its_model(dirs, tmp_path):
    import shutil

    from training import rundir

    out = tmp_path / "results"
    shutil.copytree(os.path.join(dirs["out"], "training-length"), out / "training-length")
    # IRMAE l=2 finished at the paper budget and committed as the CPU path leaves it: the
    # run's files but the model and checkpoints; the AE not finished.
    smoke = budgets.make_config(SMOKE, "shapes", "irmae").run_name
    paper = budgets.make_config(budgets.BUDGETS["paper"], "shapes", "irmae").run_name
    folder = out / "paper" / runner.PAPER_RUNS_DIR / paper
    folder.mkdir(parents=True)
    for name in (rundir.CONFIG_FILE, rundir.STATUS_FILE, rundir.HISTORY_FILE, rundir.SPECTRUM_FILE):
        shutil.copy(os.path.join(dirs["runs"], smoke, name), folder / name)
    unfinished = out / "paper" / runner.PAPER_RUNS_DIR / budgets.make_config(
        budgets.BUDGETS["paper"], "shapes", "ae").run_name
    unfinished.mkdir()
    (unfinished / rundir.STATUS_FILE).write_text(json.dumps({"state": "training", "epochs": 46}))
    others = {"paper": runner.load_paper_documents(str(out))}
    pair = others["paper"]["training-length"]
    assert [row["group"] for row in pair["rows"]] == ["IRMAE l=2"]
    assert pair["rows"][0]["steps"] == report.PAPER_STEPS
    rank = pair["rows"][0]["effective_rank"]

    path = str(tmp_path / "results.md")
    report.write_report(runner.load_documents(str(out)), str(out), path, others)
    text = open(path).read()
    line = text.splitlines()[2]
    assert "**At the paper's budget**" in line and "only IRMAE l=2 has been trained to the end" in line
    assert f"effective rank {rank} (paper: 7)" in line and "neither reproduced nor refuted" in line
    assert "training-length --budget paper" in line
    assert f"| paper budget, {report.PAPER_STEPS:,} steps |" in text
    assert f"| {rank} / — |" in text
    assert f"(results/paper/runs/{paper}/figures/spectrum.png)" in text
    # Its figures, drawn beside the runs from their history and spectrum.
    from training.experiments import training_length

    drawn = training_length.runs_figures(pair)
    for name, title in drawn:
        assert os.path.getsize(out / "paper" / runner.PAPER_RUNS_DIR / name) > 1000
        assert f"![{title}, paper budget (" in text and f"(results/paper/runs/{name})" in text
    # The experiment's own document, once written, replaces the runs'.
    document = copy.deepcopy(runner.load_documents(dirs["out"])["training-length"])
    os.makedirs(out / "paper" / "training-length")
    (out / "paper" / "training-length" / "results.json").write_text(json.dumps(document))
    assert "source" not in runner.load_paper_documents(str(out))["training-length"]


def test_the_budgets_table_gives_the_rank_over_training():
    row = {"rank_by_epoch": [3, 4, 4, 5, 5, 5, 5, 6, 6, 6]}
    assert report._rank_path(row) == "3 → 5 → 6"  # after epochs 1, 5 and 10
    assert report._rank_path({"rank_by_epoch": [4]}) == "4 → 4 → 4"
    assert report._rank_path({}) == "—"


def test_hardware_is_written_once_for_every_place_that_shows_it():
    assert report.hardware_text({"cpu": "AMD EPYC", "cores": 2, "gpus": []}) == "AMD EPYC, 2 CPU cores, no GPU"
    assert report.hardware_text({"cpu": "Xeon", "cores": 16, "gpus": ["/physical_device:GPU:0"]}) == (
        "Xeon, 16 CPU cores, GPUs /physical_device:GPU:0")
    assert report.hardware_text(None) == "not recorded"
    # Runs trained in different sittings: each run's machine, named by its model.
    epyc = {"cpu": "AMD EPYC", "cores": 2, "gpus": []}
    mixed = {"hardware": None, "rows": [{"group": "AE", "hardware": epyc}, {"group": "IRMAE l=2"}]}
    assert report.document_hardware_text(mixed) == "AE: AMD EPYC, 2 CPU cores, no GPU; IRMAE l=2: not recorded"
    assert report.document_hardware_text({"hardware": epyc, "rows": []}) == "AMD EPYC, 2 CPU cores, no GPU"
    assert report.document_hardware_text({"hardware": None, "rows": [{"group": "AE"}]}) == "not recorded"


def test_finished_runs_are_reused(dirs):
    # The report test ran after every experiment; shapes-rank again trains nothing.
    document = runner.run_experiment("shapes-rank", SMOKE, dirs["runs"], dirs["out"])
    assert document["runs"]["trained_now"] == 0 and document["runs"]["reused"] > 0


def test_a_complete_run_trained_outside_an_experiment_is_reused(dirs):
    """The paper budget's CPU path: `python -m training.fit --config` trains a run under the
    experiment's name, which has no experiment timing; the experiment takes it as it is."""
    trial = budgets.Trial("AE", budgets.make_config(SMOKE, "shapes", "ae"))
    run = RunDir(os.path.join(dirs["runs"], trial.config.run_name))
    assert run.read_status()["state"] == "complete"
    os.remove(run.timing_path)
    parallel = dataclasses.replace(SMOKE, parallel_runs=2)  # train_all's path, too
    ctx = context.Context(parallel, dirs["runs"], dirs["out"])
    ctx.train_all([trial])
    assert ctx.train(trial) == run.path
    assert (ctx.trained_now, ctx.reused) == (0, 1)


def test_run_names_tell_settings_apart():
    names = {
        budgets.make_config(SMOKE, "shapes", **kw).run_name
        for kw in ({}, {"init_scale": 0.3}, {"tying": "shared"}, {"freeze_stack": True},
                   {"stack_activation": "relu"}, {"optimizer": "sgd", "lr": 0.01},
                   {"stack_initializer": "glorot_uniform"}, {"linear_layers": 4}, {"seed": 1})
    }
    assert len(names) == 9
    assert all(name.endswith("-smoke") for name in names)


def test_a_sweep_run_is_never_the_full_run_of_the_same_settings():
    full = budgets.make_config(SMOKE, "shapes", optimizer="sgd", lr=0.01)
    sweep = budgets.make_config(SMOKE, "shapes", optimizer="sgd", lr=0.01, size=SMOKE.sweep)
    assert full.run_name != sweep.run_name and sweep.run_name.endswith("-smoke")
    assert (sweep.train_size, sweep.epochs) == (SMOKE.sweep["train_size"], SMOKE.sweep["epochs"])


def test_a_diverged_run_is_recorded_and_not_retrained(tmp_path, monkeypatch):
    from export.errors import RunFailed
    from training import trainer
    from training.rundir import RunDir

    calls = []

    def diverging_train(config, quiet=False):
        calls.append(config.run_name)
        run_dir = os.path.join(config.output_dir, config.run_name)
        os.makedirs(run_dir)
        RunDir(run_dir).write_status(state="failed", reason="nan", epoch=1)
        raise RunFailed("training stopped in epoch 1: the loss became NaN")

    monkeypatch.setattr(trainer, "train", diverging_train)
    ctx = context.Context(SMOKE, str(tmp_path / "runs"), str(tmp_path / "out"))
    trial = budgets.Trial("sgd", budgets.make_config(SMOKE, "shapes", optimizer="sgd", lr=10.0))
    for _ in range(2):
        with pytest.raises(RunFailed, match="epoch 1: the loss became NaN"):
            ctx.train(trial)
    assert len(calls) == 1 and (ctx.trained_now, ctx.reused) == (1, 1)


def _document(rows):
    return {"rows": rows}


class TestVerdicts:
    def test_rank_summary_says_when_results_contradict_the_paper(self):
        rows = [dict(label=label, seed=0, effective_rank=rank, mse=0.005)
                for label, rank in (("AE", 6), ("IRMAE l=2", 6), ("IRMAE l=4", 5), ("AE+L1", 6),
                                    ("AE+L2", 6), ("VAE", 9))]
        line = report.summary_rank({"shapes-rank": _document(rows)})
        assert "about the same as the AE's 6" in line and "contradicts the paper" in line
        rows[1]["effective_rank"] = 3
        line = report.summary_rank({"shapes-rank": _document(rows)})
        assert "lower than the AE's 6 (as in the paper" in line

    def test_rank_summary_reports_ranks_still_moving(self):
        rows = [dict(label="AE", seed=0, effective_rank=6, mse=0.005, rank_by_epoch=[4, 4, 5, 5, 6, 6]),
                dict(label="IRMAE l=2", seed=0, effective_rank=4, mse=0.005,
                     rank_by_epoch=[3, None, 4, 4, 4, 4])]
        line = report.summary_rank({"shapes-rank": _document(rows)})
        assert "ranks went AE 5 → 6, IRMAE l=2 4 → 4" in line
        del rows[0]["rank_by_epoch"], rows[1]["rank_by_epoch"]
        assert "ranks went" not in report.summary_rank({"shapes-rank": _document(rows)})

    def test_rank_summary_reports_the_longest_runs(self):
        rank_rows = [dict(label="AE", seed=0, effective_rank=6, mse=0.005),
                     dict(label="IRMAE l=2", seed=0, effective_rank=4, mse=0.005)]
        long_rows = [dict(group="AE", steps=100, effective_rank=6, mse=0.005),
                     dict(group="IRMAE l=2", steps=100, effective_rank=4, mse=0.005),
                     dict(group="AE", steps=31250, effective_rank=12, mse=0.004),
                     dict(group="IRMAE l=2", steps=31250, effective_rank=7, mse=0.0041)]
        documents = {"shapes-rank": _document(rank_rows), "training-length": _document(long_rows)}
        line = report.summary_rank(documents)
        assert ("Trained for 31,250 steps (`training-length`), IRMAE l=2 uses 7, lower than the "
                "AE's 12 (eval MSE 0.0041 vs 0.0040).") in line
        long_rows[2]["colour_kept"], long_rows[3]["colour_kept"] = 0.2, 0.95
        line = report.summary_rank(documents)
        assert "(eval MSE 0.0041 vs 0.0040); their reconstructions keep 95% and 20% of the images' colour" in line
        long_rows[2]["colour_kept"], long_rows[3]["colour_kept"] = 0.04, 0.05
        line = report.summary_rank(documents)
        assert "both still reconstruct the shapes in grey (5% and 4% of the images' colour kept)" in line
        del documents["training-length"]
        assert "Trained for" not in report.summary_rank(documents)

    def test_optimizers_that_stay_at_the_mean_image_are_not_compared(self):
        def row(name, lr, rank, mse, trained, group=""):
            return dict(label=f"{name} lr={lr:g}", group=group, config={"optimizer": name, "lr": lr},
                        effective_rank=rank, mse=mse, trained=trained, mean_image_mse=0.0225)

        rows = [row("adam", 1e-3, 5, 0.005, True), row("sgd", 0.3, 10, 0.0215, False),
                row("rmsprop", 1e-3, 15, 0.0214, False),
                row("adam", 1e-3, 4, 0.008, True, "sweep"), row("sgd", 0.3, 18, 0.022, False, "sweep"),
                row("rmsprop", 1e-4, 18, 0.021, False, "sweep"), row("rmsprop", 1e-3, 9, 0.015, True, "sweep")]
        line = report.summary_init_and_optimizer({"optimizer": _document(rows)})
        assert "only adam lr=0.001 → 5 trains the network at all" in line
        assert "sgd stays at the mean image (eval MSE 0.0215, the mean image's 0.0225) at every learning rate" in line
        assert "rmsprop stays at the mean image (eval MSE 0.0214, the mean image's 0.0225) at its tuned rate 0.001" in line
        rows[1]["trained"] = True
        line = report.summary_init_and_optimizer({"optimizer": _document(rows)})
        assert "adam lr=0.001 → 5, sgd lr=0.3 → 10: the optimizer matters" in line

    def test_depth_verdict_separates_having_a_stack_from_its_depth(self):
        def row(l, rank, gmm):
            return dict(label=f"l={l}", config={"linear_layers": l}, effective_rank=rank, fid={"gmm": gmm})

        rows = [row(0, 6, 2.39), row(1, 4, 2.33), row(2, 4, 2.40), row(8, 4, 2.44)]
        line = report.summary_depth_and_tying({"depth": _document(rows)})
        assert ("every stack lowers the rank below the AE's, from l=1 to l=8 the depth does not change "
                "it; best GMM FID: l=1, l=0, l=2 and l=8 (within 5%)") in line
        rows[2]["effective_rank"] = 3
        assert "from l=1 to l=8 the depth changes it by at most 1;" in report.summary_depth_and_tying(
            {"depth": _document(rows)})
        rows[3].update(effective_rank=2, fid={"gmm": 1.0})
        line = report.summary_depth_and_tying({"depth": _document(rows)})
        assert "deeper stacks lower it further (l=1 → l=8); best GMM FID: l=8." in line
        rows[1]["effective_rank"] = 6
        assert "some stacks lower the rank" in report.summary_depth_and_tying({"depth": _document(rows)})

    def test_generation_ties_are_named_not_broken(self):
        rows = [dict(group="shapes", label=label, fid={"gmm": gmm})
                for label, gmm in (("AE", 2.391), ("VAE", 5.03), ("IRMAE", 2.394))]
        line = report.summary_latent_and_generation({"generation": _document(rows)})
        assert "shapes: AE 2.39, VAE 5.03, IRMAE 2.39 (best AE and IRMAE (within 5%))" in line

    def test_downstream_gives_the_spread_and_says_when_it_swallows_the_gap(self):
        rows = [dict(label=label, labels=count, seeds=5, test_error=error, test_error_std=std)
                for label, count, error, std in (
                    ("AE", "10", 40.0, 7.75), ("VAE", "10", 37.47, 5.26), ("IRMAE", "10", 32.58, 5.54),
                    ("supervised", "10", 78.79, 14.69), ("AE", "all", 4.84, 0.6), ("IRMAE", "all", 6.87, 1.66))]
        line = report.summary_downstream({"downstream": _document(rows)})
        assert ("test error (mean ± standard deviation over 5 seeds) with 10 labels: AE 40.0 ± 7.8 %, "
                "VAE 37.5 ± 5.3 %, IRMAE 32.6 ± 5.5 %, supervised 78.8 ± 14.7 %; with all: AE 4.8 ± 0.6 %, "
                "IRMAE 6.9 ± 1.7 %") in line
        assert ("IRMAE's frozen features are best, as the paper reports for IRMAE, though the gap to VAE "
                "(4.9 points) is within one standard deviation over the seeds.") in line
        rows[0]["test_error"] = rows[1]["test_error"] = 45.0
        line = report.summary_downstream({"downstream": _document(rows)})
        assert "as the paper reports for IRMAE." in line and "though" not in line
        rows[2]["test_error"] = 50.0
        assert "AE's frozen features are best, not IRMAE's" in report.summary_downstream({"downstream": _document(rows)})

    def test_seeds_that_disagree_are_both_shown(self):
        rows = [dict(label="IRMAE l=2", seed=0, effective_rank=4, mse=0.01),
                dict(label="IRMAE l=2", seed=1, effective_rank=5, mse=0.01),
                dict(label="AE", seed=0, effective_rank=9, mse=0.01)]
        assert "uses 4/5 of 32" in report.summary_rank({"shapes-rank": _document(rows)})

    def test_frozen_stack_no_effect_is_worded(self):
        rows = [dict(label="AE (no stack)", effective_rank=10), dict(label="frozen random", effective_rank=11)]
        line = report.summary_depth_and_tying({"tying": _document(rows)})
        assert "frozen matrices: no effect (as an AE)" in line

    def test_missing_experiments_say_how_to_run_them(self):
        line = report.summary_rank({})
        assert "not run yet" in line and "python -m training.experiments shapes-rank" in line


def test_unknown_experiment_is_one_line_exit_2():
    result = subprocess.run([sys.executable, "-m", "training.experiments", "rank-of-everything"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "training.experiments: error: unknown experiment rank-of-everything; choose from "
        + ", ".join(registry.EXPERIMENTS) + ", all or report."
    ]


def test_smoke_budget_is_smaller_than_cpu():
    assert RunConfig(**{**SMOKE.shapes}).train_size < budgets.BUDGETS["cpu"].shapes["train_size"]


def test_fid_note_names_each_datasets_set_size():
    rows = [dict(config={"dataset": "shapes"}, fid_num_images=2000),
            dict(config={"dataset": "digits"}, fid_num_images=364),
            dict(config={"dataset": "shapes"}, fid_num_images=2000)]
    assert "N = 2000 (shapes) / 364 (digits) eval images" in tables.fid_note(rows)
    assert "N = 2000 eval images" in tables.fid_note(rows[:1])


@pytest.mark.slow
def test_parallel_runs_train_together_as_processes_and_are_counted_once(tmp_path):
    import dataclasses

    budget = dataclasses.replace(SMOKE, parallel_runs=2)
    ctx = context.Context(budget, str(tmp_path / "runs"), str(tmp_path / "out"))
    trials = [budgets.Trial("AE", budgets.make_config(budget, "shapes", "ae")),
              budgets.Trial("IRMAE", budgets.make_config(budget, "shapes", "irmae"))]
    ctx.train_all(trials)
    assert (ctx.trained_now, ctx.reused) == (2, 0) and ctx.train_seconds > 0
    for trial in trials:
        run = RunDir(ctx.train(trial))  # already trained: not again, not counted again
        assert run.read_status()["state"] == "complete" and run.read_timing()["train_seconds"] > 0
    assert (ctx.trained_now, ctx.reused) == (2, 0)
    assert not [name for name in os.listdir(tmp_path / "runs") if name.endswith(".json")]


def test_the_report_says_which_adam_made_each_section():
    new = {"adam_epsilon_placement": "pytorch"}
    old = {}  # results.json from before the field: Keras' placement
    lines = report.optimizer_summary({"shapes-rank": new, "depth": old})
    assert "shapes-rank trained with Adam as the official code" in lines[0]
    assert "depth still with Keras' placement" in lines[0]
    assert report.optimizer_summary({"shapes-rank": new}) == []
    assert "PyTorch's update" in report.optimizer_line(new)
    assert "Keras' placement of ε" in report.optimizer_line(old)
