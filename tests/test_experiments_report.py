"""training/experiments/report.py: the results page from every experiment's results, its summary verdicts,
the paper budget's pair and the machines."""

import copy
import json
import os
import shutil

import pytest

from tests.helpers import commit_fig2_runs
from training.experiments import budgets
from training.experiments import registry
from training.experiments import report
from training.experiments import runner
from training.experiments import shapes_rank
from training.experiments import training_length
from training.rundir import RunDir

SMOKE = budgets.BUDGETS["smoke"]


@pytest.mark.slow
def test_report_from_all_experiments(smoke_experiments, tmp_path):
    smoke_experiments.results()  # runs those this session has not
    documents = runner.load_documents(smoke_experiments.out)
    assert set(documents) == set(registry.EXPERIMENTS)
    report_path = str(tmp_path / "results.md")
    report.write_report(documents, smoke_experiments.out, report_path)
    text = open(report_path).read()
    summary = [line for line in text.splitlines() if line[:3] in {f"{i}. " for i in range(1, 6)}]
    assert len(summary) == 5 and not any("not run yet" in line for line in summary)
    for name in registry.EXPERIMENTS:
        assert f"## {name}:" in text
    assert "results/shapes-rank/spectra.png" in text


@pytest.mark.slow
def test_the_report_puts_the_paper_budgets_pair_beside_this_ones(smoke_experiments, tmp_path):
    smoke_experiments.results()
    documents = runner.load_documents(smoke_experiments.out)
    report_path = str(tmp_path / "results.md")
    report.write_report(documents, smoke_experiments.out, report_path)
    text = open(report_path).read()
    assert "has not been run to the end here" in text.splitlines()[2]  # summary line 1
    assert "training-length --budget paper" in text
    # The same pair as if the paper budget had trained it, with other numbers.
    paper = copy.deepcopy(documents["training-length"])
    paper["budget"]["name"] = "paper"
    paper["rows"] = paper["rows"][:2]  # AE and IRMAE l=2 at one length, as the paper budget trains them
    for row in paper["rows"]:
        row.update(steps=report.PAPER_STEPS, effective_rank={"AE": 15, "IRMAE l=2": 7}[row["group"]])
    report.write_report(documents, smoke_experiments.out, report_path,
                        others={"paper": {"training-length": paper}})
    text = open(report_path).read()
    assert "## Fig. 2's pair at each budget, beside the paper" in text
    assert f" paper budget, {report.PAPER_STEPS:,} steps |" in text
    assert "| effective rank, IRMAE l=2 / AE | 7 / 17 |" in text and "7 / 15 |" in text
    line = text.splitlines()[2]
    assert "**At the paper's budget**" in line and "the paper's gap is reproduced" in line
    assert "IRMAE's rank is the paper's 7" in line
    assert "results/paper/training-length/rank_over_training.png" in text
    for row in paper["rows"]:
        row["effective_rank"] = {"AE": 15, "IRMAE l=2": 6}[row["group"]]
    report.write_report(documents, smoke_experiments.out, report_path,
                        others={"paper": {"training-length": paper}})
    assert "IRMAE's rank is 1 below the paper's 7" in open(report_path).read().splitlines()[2]


@pytest.mark.slow
def test_the_cpu_page_shows_a_paper_budget_run_committed_without_its_model(smoke_experiments, tmp_path):
    smoke_experiments.result("training-length")
    out = tmp_path / "results"
    shutil.copytree(os.path.join(smoke_experiments.out, "training-length"), out / "training-length")
    # IRMAE l=2 finished at the paper budget and committed as the CPU path leaves it: the
    # run's files but the model and checkpoints; the AE not finished.
    smoke = budgets.make_config(SMOKE, "shapes", "irmae").run_name
    paper = budgets.make_config(budgets.BUDGETS["paper"], "shapes", "irmae").run_name
    folder = out / "paper" / runner.PAPER_RUNS_DIR / paper
    folder.mkdir(parents=True)
    run = RunDir(os.path.join(smoke_experiments.runs, smoke))
    for path in (run.config_path, run.status_path, run.history_path, run.spectrum_path):
        shutil.copy(path, folder)
    unfinished = RunDir(str(out / "paper" / runner.PAPER_RUNS_DIR / budgets.make_config(
        budgets.BUDGETS["paper"], "shapes", "ae").run_name))
    os.mkdir(unfinished.path)
    with open(unfinished.status_path, "w") as handle:
        json.dump({"state": "training", "epochs": 46}, handle)
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
    drawn = training_length.runs_figures(pair)
    for name, title in drawn:
        assert os.path.getsize(out / "paper" / runner.PAPER_RUNS_DIR / name) > 1000
        assert f"![{title}, paper budget (" in text and f"(results/paper/runs/{name})" in text
    # The experiment's own document, once written, replaces the runs'.
    document = copy.deepcopy(runner.load_documents(smoke_experiments.out)["training-length"])
    os.makedirs(out / "paper" / "training-length")
    (out / "paper" / "training-length" / "results.json").write_text(json.dumps(document))
    assert "source" not in runner.load_paper_documents(str(out))["training-length"]


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


def test_the_report_says_which_adam_made_each_section():
    new = {"adam_epsilon_placement": "pytorch"}
    old = {}  # results.json from before the field: Keras' placement
    lines = report.optimizer_summary({"shapes-rank": new, "depth": old})
    assert "shapes-rank trained with Adam as the official code" in lines[0]
    assert "depth still with Keras' placement" in lines[0]
    assert report.optimizer_summary({"shapes-rank": new}) == []
    assert "PyTorch's update" in report.optimizer_line(new)
    assert "Keras' placement of ε" in report.optimizer_line(old)


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


# --- Fig. 2 at the paper's budget, from committed runs --------------------------------------


@pytest.fixture
def paper_runs(tmp_path):
    return commit_fig2_runs(tmp_path / "results")


def test_the_results_page_shows_the_six_models_beside_the_papers_ranks(paper_runs):
    others = {"paper": runner.load_paper_documents(str(paper_runs))}
    runner.draw_runs_figures(others["paper"])
    root = paper_runs / "paper" / runner.PAPER_RUNS_DIR
    for name, _ in shapes_rank.RUNS_FIGURES + training_length.RUNS_FIGURES:
        assert os.path.getsize(root / name) > 1000
    text = "\n".join(report.fig2_section(others, str(paper_runs), str(paper_runs.parent)))
    assert "| AE | 17 | 12 | −5 | 9.60 | 0.00012 | 90% | 11 → 12 (rising) |" in text
    assert "| IRMAE l=2 | 7 | 6 | −1 |" in text and "| IRMAE l=4 | 4 | 4 | 0 |" in text
    assert "| VAE | not read off | 3 | — |" in text
    assert "| AE+L1 | 25 | not trained at this budget |" in text and "| AE+L2 | 17 | not trained at this budget |" in text
    assert "The same as the paper's (within 1): IRMAE l=2 6 (paper 7), IRMAE l=4 4 (paper 4)." in text
    assert "Different from the paper's: AE 12 against 17 (5 below)." in text
    assert "IRMAE below every deterministic baseline, holds here: IRMAE l=2 6, IRMAE l=4 4 against AE 12" in text
    assert "eval MSE 64× the AE's" in text
    assert "Not trained at the paper's budget: AE+L1, AE+L2" in text
    assert "hardware: Test CPU, 2 CPU cores, no GPU" in text
    for name, title in shapes_rank.RUNS_FIGURES:
        assert f"![{title}](results/paper/runs/{name})" in text


def test_the_ordering_verdict_follows_the_numbers(paper_runs):
    others = {"paper": runner.load_paper_documents(str(paper_runs))}
    ae = others["paper"]["shapes-rank"]["rows"][0]
    ae["effective_rank"] = 5
    text = "\n".join(report.fig2_section(others, str(paper_runs), str(paper_runs.parent)))
    assert "IRMAE below every deterministic baseline, does not hold here" in text
    assert "AE 5 against 17 (12 below)" in text


def test_no_paper_budget_runs_no_section(tmp_path):
    assert report.fig2_section({"paper": runner.load_paper_documents(str(tmp_path))}, str(tmp_path),
                               str(tmp_path)) == []
