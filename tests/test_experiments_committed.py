"""training/experiments/committed.py: an experiment's document from finished runs committed
without their models (the paper budget's CPU path), for Fig. 2's six models."""

import csv
import json
import os

import pytest

from training.experiments import budgets
from training.experiments import committed
from training.experiments import report
from training.experiments import runner
from training.experiments import shapes_rank
from training.experiments import training_length
from training.rundir import RunDir

PAPER = budgets.BUDGETS["paper"]
MACHINE = {"cores": 2, "cpu": "Test CPU", "gpus": [], "python": "3", "tensorflow": "2"}


def commit_run(root, config, rank, ranks_by_epoch, state="complete", mse=0.001, colour=0.9):
    """A finished run as the CPU path commits it: its config (with the machine), status,
    history and spectrum, no model."""
    run = RunDir(os.path.join(root, config.run_name))
    os.makedirs(run.path)
    with open(run.config_path, "w") as handle:
        json.dump(dict(config.to_dict(), hardware=MACHINE), handle)
    with open(run.status_path, "w") as handle:
        json.dump({"state": state, "epochs": len(ranks_by_epoch)}, handle)
    with open(run.history_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "effective_rank", "entropy_rank"])
        writer.writerows([epoch, r, r * 0.8] for epoch, r in enumerate(ranks_by_epoch))
    values = [1.0] + [0.5] * (rank - 1) + [1e-4] * (config.latent_dim - rank)
    with open(run.spectrum_path, "w") as handle:
        json.dump({"effective_rank": rank, "entropy_rank": rank * 0.8, "singular_values": values,
                   "eval_mse": mse, "colour_kept": colour, "num_codes": 10_000}, handle)
    return run


def fig2(label):
    return next(t for t in shapes_rank.fig2_trials(PAPER) if t.label == label and t.config.seed == 0)


@pytest.fixture
def paper_runs(tmp_path):
    """Four of Fig. 2's six models finished at the paper's budget, AE+L2 half-way, AE+L1
    not started; OUT_ROOT/paper/runs as the results page reads it."""
    root = tmp_path / "results" / "paper" / runner.PAPER_RUNS_DIR
    os.makedirs(root)
    for label, rank, mse in (("AE", 12, 1.2e-4), ("IRMAE l=2", 6, 2.2e-4), ("IRMAE l=4", 4, 3e-3),
                             ("VAE", 3, 7.7e-3)):
        commit_run(str(root), fig2(label).config, rank, [rank - 1] * 90 + [rank] * 10, mse=mse)
    commit_run(str(root), fig2("AE+L2").config, 9, [9] * 46, state="training")
    return tmp_path / "results"


def test_only_finished_runs_count_in_figure_2s_order(paper_runs):
    documents = runner.load_paper_documents(str(paper_runs))
    document = documents["shapes-rank"]
    assert committed.from_runs(document) and document["experiment"] == "shapes-rank"
    assert [row["label"] for row in document["rows"]] == ["AE", "VAE", "IRMAE l=2", "IRMAE l=4"]
    assert document["hardware"] == MACHINE
    vae = document["rows"][1]
    assert vae["run_name"] == fig2("VAE").config.run_name and vae["steps"] == report.PAPER_STEPS
    assert vae["effective_rank"] == 3 and vae["mse"] == pytest.approx(7.7e-3)
    assert vae["rank_by_epoch"] == [2] * 90 + [3] * 10
    # The same runs give training-length its pair.
    assert [row["group"] for row in documents["training-length"]["rows"]] == ["AE", "IRMAE l=2"]
    assert shapes_rank.runs_document(PAPER, str(paper_runs / "nothing-here")) is None


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
    assert "| AE+L1 | 25 | not trained yet |" in text and "| AE+L2 | 17 | not trained yet |" in text
    assert "The same as the paper's (within 1): IRMAE l=2 6 (paper 7), IRMAE l=4 4 (paper 4)." in text
    assert "Different from the paper's: AE 12 against 17 (5 below)." in text
    assert "IRMAE below every deterministic baseline, holds here: IRMAE l=2 6, IRMAE l=4 4 against AE 12" in text
    assert "eval MSE 64× the AE's" in text
    assert "Not trained at the paper's budget yet: AE+L1, AE+L2" in text
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
