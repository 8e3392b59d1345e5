"""docs/results.md, assembled from the experiments' results.json files.

The five summary lines at the top are computed from the numbers: each compares the
measured values and words the outcome ("lower", "no effect", "contradicts the
paper") from that comparison, so no number or verdict in the report is typed in.
"""

import os

from irmae_keras.analysis import GREY_COLOUR_KEPT
from irmae_keras.paper import BATCH_SIZE
from irmae_keras.paper import EPOCHS
from irmae_keras.paper import PAPER_STEPS
from irmae_keras.paper import SHAPES_TRAIN_IMAGES
from irmae_keras.staging import atomic_path
from training.provenance import hardware_text

PAPER_RANKS = {"IRMAE l=2": 7, "IRMAE l=4": 4, "AE": 17, "AE+L2": 17, "AE+L1": 25}
HEADLINE = ("IRMAE l=2", "AE")  # Fig. 2's pair, which `training-length` trains at every budget
RANK_TOLERANCE = 1  # ranks within one count as the same
FID_TOLERANCE = 0.05  # FIDs within 5 % of the lowest tie: one sampling seed, one N


def _rows(document, **match):
    return [row for row in document["rows"] if all(row.get(k) == v for k, v in match.items())]


def _first(document, label, seed=None):
    rows = _rows(document, label=label)
    if seed is not None:
        rows = [row for row in rows if row["seed"] == seed] or rows
    return rows[0] if rows else None


def _ranks(document, label):
    """'r' or 'r1/r2' over seeds (shown both where seeds disagree)."""
    values = sorted({row["effective_rank"] for row in _rows(document, label=label)})
    return "/".join(str(v) for v in values) if values else "?"


def _best(rows, value, label=lambda row: row["label"]):
    """'X' for the row with the lowest value, or 'X and Y (within 5 %)' where others tie."""
    lowest = min(value(row) for row in rows)
    tied = [label(row) for row in sorted(rows, key=value) if value(row) <= lowest * (1 + FID_TOLERANCE)]
    if len(tied) == 1:
        return tied[0]
    return f"{', '.join(tied[:-1])} and {tied[-1]} (within {FID_TOLERANCE:.0%})"


def _compare(a, b, smaller="lower", larger="higher"):
    if abs(a - b) <= RANK_TOLERANCE:
        return "about the same as"
    return f"{smaller} than" if a < b else f"{larger} than"


def _headline_at(document, steps=None):
    """{group: row} of the training-length rows at `steps` (default: the longest)."""
    steps = steps or max(row["steps"] for row in document["rows"])
    return {row["group"]: row for row in document["rows"] if row["steps"] == steps}


def document_hardware_text(document):
    """The machine a document's rows were trained on: one, or, for runs trained in
    different sittings (a runs document), each run's."""
    rows = document["rows"]
    if document.get("hardware") or not any(row.get("hardware") for row in rows):
        return hardware_text(document.get("hardware"))
    return "; ".join(f"{row['group']}: {hardware_text(row.get('hardware'))}" for row in rows)


def paper_budget_clause(others):
    """What the paper-budget headline pair shows, or how to get it."""
    command = ("`python -m training.experiments training-length --budget paper` trains the pair "
               f"({PAPER_STEPS:,} steps each; see docs/training.md for its cost)")
    d = others.get("paper", {}).get("training-length")
    if not d:
        return f" The paper's own budget has not been run to the end here: {command}."
    steps = max(row["steps"] for row in d["rows"])
    at = _headline_at(d, steps)
    irmae, ae = at.get("IRMAE l=2"), at.get("AE")
    machines = document_hardware_text(d)
    if d["hardware"]:
        where = f"{steps:,} steps, on {machines}"
    elif machines == hardware_text(None):
        where = f"{steps:,} steps, hardware not recorded in the runs"
    else:  # runs from different machines: each named
        where = f"{steps:,} steps, hardware: {machines}"
    if not irmae or not ae:
        done, missing = (irmae, "AE") if irmae else (ae, "IRMAE l=2")
        return (f" **At the paper's budget** ({where}) only {done['group']} has been trained to the end "
                f"here: effective rank {done['effective_rank']} (paper: {PAPER_RANKS[done['group']]}), "
                f"eval MSE {done['mse']:.3g}, colour kept {done['colour_kept']:.0%}; the {missing} has not, "
                f"so the paper's gap is neither reproduced nor refuted yet: {command}.")
    gap = irmae["effective_rank"] + RANK_TOLERANCE < ae["effective_rank"]
    near = abs(irmae["effective_rank"] - PAPER_RANKS["IRMAE l=2"]) <= RANK_TOLERANCE
    verdict = ("the paper's gap is reproduced" if gap else "the paper's gap is not reproduced")
    off = irmae["effective_rank"] - PAPER_RANKS["IRMAE l=2"]
    if not near:
        verdict += f"; IRMAE's rank is not the paper's {PAPER_RANKS['IRMAE l=2']}"
    elif off:
        verdict += f", and IRMAE's rank is {abs(off)} {'below' if off < 0 else 'above'} the paper's {PAPER_RANKS['IRMAE l=2']}"
    else:
        verdict += f", and IRMAE's rank is the paper's {PAPER_RANKS['IRMAE l=2']}"
    return (f" **At the paper's budget** ({where}): IRMAE l=2 uses "
            f"{irmae['effective_rank']}, {_compare(irmae['effective_rank'], ae['effective_rank'])} the "
            f"AE's {ae['effective_rank']} (eval MSE {irmae['mse']:.3g} vs {ae['mse']:.3g}): {verdict} "
            f"(paper: {PAPER_RANKS['IRMAE l=2']} vs {PAPER_RANKS['AE']}).")


RANK_PATH_FRACTIONS = (0.1, 0.5, 1.0)  # the budgets table's rank over training: after these shares of it


def _rank_path(row):
    """'4 → 5 → 6': the effective rank after a tenth, half and all of the run's epochs."""
    ranks = row.get("rank_by_epoch") or []
    if not ranks:
        return "—"
    return " → ".join(str(ranks[max(0, round(share * len(ranks)) - 1)]) for share in RANK_PATH_FRACTIONS)


# The thresholds the paper-budget pair's spectra are counted at, beside this project's 1 %:
# the paper's ranks are read off a log-scale plot whose cut-off it does not state.
RANK_THRESHOLDS = (0.05, 0.01, 0.005, 0.001)


def thresholds_section(document):
    """The paper-budget pair's end-of-training spectra counted at several thresholds, and
    what else could make a rank differ from the paper's (eval set size, a rank still
    rising): every figure from the committed runs."""
    from irmae_keras.analysis import rank_from_spectrum
    from irmae_keras.paper import RANK_THRESHOLD
    from training.experiments.tables import markdown_table
    from training.trainer import MONITOR_IMAGES

    at = _headline_at(document)
    if len(at) < len(HEADLINE) or not all(at[label].get("singular_values") for label in HEADLINE):
        return []
    irmae, ae = at["IRMAE l=2"], at["AE"]
    rows = []
    for threshold in RANK_THRESHOLDS:
        name = f"{threshold:.1%}".replace(".0%", "%") + (" (used on this page)" if threshold == RANK_THRESHOLD else "")
        rows.append([name] + [str(rank_from_spectrum(at[label]["singular_values"], threshold))
                              for label in HEADLINE] + [f"{PAPER_RANKS[label]}" for label in HEADLINE])
    lines = ["### Counting the paper-budget spectra", "",
             "The paper's ranks are read off its Fig. 2, a log-scale plot whose cut-off it does not "
             "state. The same end-of-training spectra (covariance of the eval codes, as the official "
             "code computes it) counted at other thresholds of the largest value:", "",
             markdown_table(["threshold", "IRMAE l=2", "AE", "paper IRMAE l=2", "paper AE"], rows), ""]
    agrees = [threshold for threshold in RANK_THRESHOLDS
              if rank_from_spectrum(ae["singular_values"], threshold) == PAPER_RANKS["AE"]]
    gap = all(rank_from_spectrum(irmae["singular_values"], t) < rank_from_spectrum(ae["singular_values"], t)
              for t in RANK_THRESHOLDS)
    monitor = [row["rank_by_epoch"][-1] for row in (irmae, ae) if row.get("rank_by_epoch")]
    tail = max(1, len(ae.get("rank_by_epoch") or []) // 10)
    findings = [
        (f"At {' and '.join(f'{t:.1%}' for t in agrees)} the AE counts the paper's {PAPER_RANKS['AE']}"
         if agrees else f"No threshold here gives the AE the paper's {PAPER_RANKS['AE']}")
        + (", and IRMAE l=2 stays below the AE at every threshold." if gap
           else "; IRMAE l=2 is not below the AE at every threshold."),
    ]
    if len(monitor) == 2 and irmae.get("num_codes"):
        same = monitor == [irmae["effective_rank"], ae["effective_rank"]]
        findings.append(
            f"The eval set's size does not explain it: the last epoch's {MONITOR_IMAGES:,} monitored eval "
            f"images give {monitor[0]} / {monitor[1]}, the final {irmae['num_codes']:,} eval codes "
            f"{irmae['effective_rank']} / {ae['effective_rank']}." if same else
            f"The eval set's size matters here: the last epoch's {MONITOR_IMAGES:,} monitored eval images "
            f"give {monitor[0]} / {monitor[1]}, the final {irmae['num_codes']:,} eval codes "
            f"{irmae['effective_rank']} / {ae['effective_rank']}.")
    ranks = ae.get("rank_by_epoch") or []
    if len(ranks) > tail:
        rising = ranks[-1] > ranks[-1 - tail]
        findings.append(
            f"The AE's rank was {'still rising' if rising else 'flat'} at the end "
            f"({ranks[-1 - tail]} → {ranks[-1]} over the last {tail} epochs)"
            + (": a longer run would count more." if rising else "."))
    return lines + [" ".join(findings), ""]


def budgets_section(documents, others, out_root, report_dir):
    """Fig. 2's pair at every budget run here, beside the paper's numbers."""
    columns = []
    for budget, d, root in (("CPU budget", documents.get("training-length"), out_root),
                            ("paper budget", others.get("paper", {}).get("training-length"),
                             os.path.join(out_root, "paper"))):
        if d:
            for steps in sorted({row["steps"] for row in d["rows"]}):
                columns.append((f"{budget}, {steps:,} steps", _headline_at(d, steps), d, root))
    if not columns:
        return []

    def cells(value):
        out = []
        for _, at, _, _ in columns:
            pair = [at.get(label) for label in HEADLINE]
            out.append(" / ".join("—" if row is None else value(row) for row in pair))
        return out

    shares = " / ".join(f"{share:.0%}" for share in RANK_PATH_FRACTIONS)
    rows = [
        ["effective rank, IRMAE l=2 / AE", f"{PAPER_RANKS['IRMAE l=2']} / {PAPER_RANKS['AE']}"]
        + cells(lambda row: str(row["effective_rank"])),
        [f"rank after {shares} of training, IRMAE l=2 / AE", "not reported"] + cells(_rank_path),
        ["eval MSE, IRMAE l=2 / AE", "not reported"] + cells(lambda row: f"{row['mse']:.3g}"),
        ["colour kept, IRMAE l=2 / AE", "in colour (Fig. 3)"]
        + cells(lambda row: f"{row['colour_kept']:.0%}" if "colour_kept" in row else "—"),
        ["trained on", "not stated"] + [document_hardware_text(d) for _, _, d, _ in columns],
        ["Adam", "PyTorch's"] + [("PyTorch's ε" if d.get("adam_epsilon_placement") == "pytorch"
                                  else "Keras' ε (before the fix)") for _, _, d, _ in columns],
    ]
    from training.experiments.tables import markdown_table
    from training.experiments.training_length import RANK_FIGURE
    from training.experiments.training_length import RUNS_FIGURES
    from training.experiments.committed import from_runs

    lines = ["## Fig. 2's pair at each budget, beside the paper", "",
             "AE and IRMAE l=2 on shapes, seed 0, from `training-length` at each budget (the paper "
             f"trains {PAPER_STEPS:,} steps: {SHAPES_TRAIN_IMAGES:,} images × {EPOCHS} epochs, batch {BATCH_SIZE}).", "",
             markdown_table(["", f"paper, {PAPER_STEPS:,} steps"] + [title for title, _, _, _ in columns], rows),
             ""]
    paper = others.get("paper", {}).get("training-length")
    if not paper or len(_headline_at(paper)) < len(HEADLINE):
        lines += [paper_budget_clause(others).strip(), ""]
    else:
        lines += thresholds_section(paper)
    seen = set()
    for title, at, d, root in columns:
        if root in seen:
            continue
        seen.add(root)
        budget = title.split(",")[0]
        if from_runs(d):
            # Trained outside the experiment: each run's own evaluation at the end of
            # `training.fit` (its eval split), and its own figures.
            codes = sorted({row["num_codes"] for row in at.values()})
            lines += [f"The {budget} column: each run's own evaluation at the end of `training.fit` "
                      f"(on {' and '.join(f'{n:,}' for n in codes)} eval images), "
                      "committed with its history and figures (not its checkpoints):", ""]
            for row in at.values():
                folder = os.path.relpath(os.path.join(d["runs_dir"], row["run_name"]), report_dir)
                lines += [f"- {row['group']}: [`{row['run_name']}`]({folder}/), its "
                          f"[spectrum]({folder}/figures/spectrum.png) and "
                          f"[reconstructions]({folder}/figures/reconstructions.png)"]
            lines.append("")
            for name, title in RUNS_FIGURES:
                path = os.path.relpath(os.path.join(d["runs_dir"], name), report_dir)
                caption = f"{title}, {budget} (hardware: {document_hardware_text(d)})"
                lines += [f"![{caption}]({path})", "", f"*{caption}.*", ""]
            continue
        path = os.path.relpath(os.path.join(root, "training-length", RANK_FIGURE[0]), report_dir)
        caption = f"Effective rank over training, {budget} ({document_hardware_text(d)})"
        lines += [f"![{caption}]({path})", "", f"*{caption}.*", ""]
    return lines


FIG2_TAIL_EPOCHS = 10  # the Fig. 2 table's rank trend: over the last epochs of each run


def _trend_at_end(row, tail=FIG2_TAIL_EPOCHS):
    """'11 → 12 (rising)': the effective rank `tail` epochs before the end and at the end."""
    ranks = [r for r in row.get("rank_by_epoch") or [] if r is not None]
    if len(ranks) <= tail:
        return "—"
    before, end = ranks[-1 - tail], ranks[-1]
    return f"{before} → {end} ({'rising' if end > before else 'falling' if end < before else 'flat'})"


def _signed(difference):
    return "0" if difference == 0 else f"{difference:+d}".replace("-", "−")


def fig2_section(others, out_root, report_dir):
    """Fig. 2's six models at the paper's budget (seed 0, from the runs committed under
    docs/results/paper/runs or the experiment's own document), beside the paper's ranks:
    which agree (within RANK_TOLERANCE), which differ and by how much, which have no
    finished run, and the six-curve figures."""
    from irmae_keras.paper import RANK_THRESHOLD
    from training.experiments.budgets import BUDGETS
    from training.experiments.committed import from_runs
    from training.experiments.shapes_rank import ORDER
    from training.experiments.shapes_rank import RUNS_FIGURES
    from training.experiments.tables import markdown_table

    d = others.get("paper", {}).get("shapes-rank")
    if not d:
        return []
    seed = BUDGETS["paper"].seeds[0]
    at = {row["label"]: row for row in d["rows"] if row["seed"] == seed}
    rows, agree, differ = [], [], []
    for label in ORDER:
        paper = PAPER_RANKS.get(label)
        row = at.get(label)
        paper_cell = "not read off" if paper is None else paper
        if row is None:
            rows.append([label, paper_cell, "not trained at this budget"] + ["—"] * 5)
            continue
        rank = row["effective_rank"]
        if paper is not None:
            difference = rank - paper
            (agree if abs(difference) <= RANK_TOLERANCE else differ).append((label, rank, paper, difference))
        rows.append([label, paper_cell, rank, "—" if paper is None else _signed(rank - paper),
                     f"{row['entropy_rank']:.2f}", f"{row['mse']:.3g}",
                     f"{row['colour_kept']:.0%}" if "colour_kept" in row else "—", _trend_at_end(row)])
    header = ["model", "paper (Fig. 2)", "effective rank here", "here − paper", "entropy rank",
              "eval MSE", "colour kept", f"rank over the last {FIG2_TAIL_EPOCHS} epochs"]
    lines = ["## Fig. 2 at the paper's budget: the six models beside the paper", "",
             f"The shapes models of Fig. 2 at the paper's budget ({PAPER_STEPS:,} steps, seed {seed}; "
             f"hardware: {document_hardware_text(d)}). The paper's ranks are read off its log-scale "
             f"plot at about {RANK_THRESHOLD:.0%} of the largest singular value, this page's threshold.", "",
             markdown_table(header, rows), ""]
    findings = []
    if agree:
        findings.append("The same as the paper's (within " + str(RANK_TOLERANCE) + "): "
                        + ", ".join(f"{label} {rank} (paper {paper})" for label, rank, paper, _ in agree) + ".")
    if differ:
        findings.append("Different from the paper's: " + ", ".join(
            f"{label} {rank} against {paper} ({abs(diff)} {'below' if diff < 0 else 'above'})"
            for label, rank, paper, diff in differ) + ".")
    irmae = {label: at[label]["effective_rank"] for label in ("IRMAE l=2", "IRMAE l=4") if label in at}
    baselines = {label: at[label]["effective_rank"] for label in ("AE", "AE+L1", "AE+L2") if label in at}
    if irmae and baselines:
        below = max(irmae.values()) < min(baselines.values())
        findings.append(
            f"The paper's ordering, IRMAE below every deterministic baseline, "
            f"{'holds' if below else 'does not hold'} here: "
            f"{', '.join(f'{k} {v}' for k, v in irmae.items())} against "
            f"{', '.join(f'{k} {v}' for k, v in baselines.items())}.")
    if "VAE" in at and "AE" in at:
        vae, ae = at["VAE"], at["AE"]
        findings.append(f"The VAE (β {vae['config']['kl_weight']:g}) counts {vae['effective_rank']} "
                        f"at an eval MSE {vae['mse'] / ae['mse']:.0f}× the AE's: its KL term sends "
                        "code dimensions to the prior, which costs reconstruction.")
    missing = [label for label in ORDER if label not in at]
    if missing:
        findings.append(f"Not trained at the paper's budget: {', '.join(missing)} "
                        "(`python -m training.experiments shapes-rank --budget paper` trains every "
                        "missing one; on a CPU, `python -m training.fit --config RUN.json` with the "
                        "experiment's config trains one per core, docs/training.md).")
    lines += [" ".join(findings), ""]
    figures = ([(os.path.join(d["runs_dir"], name), title) for name, title in RUNS_FIGURES] if from_runs(d)
               else [(os.path.join(out_root, "paper", "shapes-rank", name), title) for name, title in d["figures"]])
    for path, title in figures:
        lines += [f"![{title}]({os.path.relpath(path, report_dir)})", "", f"*{title}.*", ""]
    return lines


def summary_rank(documents):
    d = documents.get("shapes-rank")
    if not d:
        return "Intrinsic dimension (Fig. 2): not run yet (`python -m training.experiments shapes-rank`)."
    irmae, ae = _first(d, "IRMAE l=2"), _first(d, "AE")
    verdict = _compare(irmae["effective_rank"], ae["effective_rank"])
    paper = ("as in the paper" if irmae["effective_rank"] + RANK_TOLERANCE < ae["effective_rank"]
             else "which contradicts the paper's gap at this budget")
    return (f"**Intrinsic dimension (Fig. 2).** On shapes (intrinsic dimension 7) IRMAE l=2 uses "
            f"{_ranks(d, 'IRMAE l=2')} of 32 code dimensions (l=4: {_ranks(d, 'IRMAE l=4')}), "
            f"{verdict} the AE's {_ranks(d, 'AE')} ({paper}; paper: 7 vs 17); AE+L1 "
            f"{_ranks(d, 'AE+L1')}, AE+L2 {_ranks(d, 'AE+L2')}, VAE {_ranks(d, 'VAE')}; eval MSE "
            f"{irmae['mse']:.4f} (IRMAE) vs {ae['mse']:.4f} (AE).{_trend(d)}{_longer(documents)}")


def _trend(document):
    """Whether the ranks were still moving over the last half of training."""
    moves = []
    for label in ("AE", "AE+L1", "IRMAE l=2"):
        row = _first(document, label)
        history = [r for r in (row or {}).get("rank_by_epoch") or [] if r is not None]
        if len(history) >= 2:
            middle, end = history[(len(history) - 1) // 2], history[-1]
            moves.append(f"{label} {middle} → {end}")
    if not moves:
        return ""
    return (" Over the second half of training the ranks went " + ", ".join(moves)
            + " (`rank_over_training.png`): a climbing curve means the budget, not the model, "
              "set that rank.")


def _longer(documents):
    """The ranks after the training-length experiment's longest runs."""
    d = documents.get("training-length")
    if not d:
        return ""
    longest = max(row["steps"] for row in d["rows"])
    at = {row["group"]: row for row in d["rows"] if row["steps"] == longest}
    if not {"AE", "IRMAE l=2"} <= set(at):
        return ""
    irmae, ae = at["IRMAE l=2"], at["AE"]
    colour = ""
    if "colour_kept" in irmae and "colour_kept" in ae:
        kept = f"{irmae['colour_kept']:.0%} and {ae['colour_kept']:.0%}"
        if max(irmae["colour_kept"], ae["colour_kept"]) < GREY_COLOUR_KEPT:
            colour = (f"; both still reconstruct the shapes in grey ({kept} of the images' colour "
                      "kept): colour, 3 of the 7 factors, is not learned yet, and what is learned "
                      "needs fewer than 7 dimensions")
        else:
            colour = (f"; their reconstructions keep {kept} of the images' colour, which 3 of the "
                      "7 factors describe")
    return (f" Trained for {longest:,} steps (`training-length`), IRMAE l=2 uses "
            f"{irmae['effective_rank']}, {_compare(irmae['effective_rank'], ae['effective_rank'])} "
            f"the AE's {ae['effective_rank']} (eval MSE {irmae['mse']:.4f} vs {ae['mse']:.4f}){colour}.")


def summary_init_and_optimizer(documents):
    parts = []
    d = documents.get("init-scale")
    if d:
        ranks = {row["label"]: row["effective_rank"] for row in d["rows"]}
        small, large = ranks.get("init ×0.1"), ranks.get("init ×3")
        trend = ("a smaller init gives a lower rank" if small + RANK_TOLERANCE < large
                 else "a larger init gives a lower rank" if large + RANK_TOLERANCE < small
                 else "no clear effect of the scale")
        listed = ", ".join(f"{k} → {v}" for k, v in ranks.items())
        parts.append(f"**Init scale (review 1):** ranks {listed}: {trend}.")
    d = documents.get("optimizer")
    if d:
        parts.append(f"**Optimizer (review 3):** {_optimizer_verdict(d)}.")
    return " ".join(parts) or "Init scale and optimizer: not run yet."


def _optimizer_verdict(document):
    """Ranks compared among the tuned runs that left the mean image; the others named."""
    tuned = [row for row in document["rows"] if row.get("group") != "sweep"]
    trained = [row for row in tuned if row.get("trained", True)]
    listed = ", ".join(f"{row['label']} → {row['effective_rank']}" for row in trained)
    if len(trained) >= 2:
        ranks = [row["effective_rank"] for row in trained]
        text = listed + (": the optimizer matters" if max(ranks) - min(ranks) > RANK_TOLERANCE
                         else ": no effect of the optimizer beyond ±1")
    elif trained:
        text = f"only {listed} trains the network at all"
    else:
        text = "no optimizer trained the network"
    for row in tuned:
        if row.get("trained", True):
            continue
        name = row["config"]["optimizer"]
        sweep = [r for r in document["rows"] if r.get("group") == "sweep" and r["config"]["optimizer"] == name]
        where = ("at every learning rate of the sweep" if not any(r.get("trained") for r in sweep)
                 else f"at its tuned rate {row['config']['lr']:g}")
        text += (f"; {name} stays at the mean image (eval MSE {row['mse']:.4f}, the mean image's "
                 f"{row['mean_image_mse']:.4f}) {where}")
    return text


def summary_depth_and_tying(documents):
    parts = []
    d = documents.get("depth")
    if d:
        rows = d["rows"]
        ranks = ", ".join(f"{row['label']} → {row['effective_rank']}" for row in rows)
        best = _best(rows, lambda row: row["fid"]["gmm"])
        parts.append(f"**Depth (reviews 3, 4):** {ranks}: {_depth_verdict(rows)}; best GMM FID: {best}.")
    d = documents.get("tying")
    if d:
        ranks = {row["label"]: row["effective_rank"] for row in d["rows"]}
        ae, frozen = ranks.get("AE (no stack)"), ranks.get("frozen random")
        frozen_verdict = ("frozen matrices: no effect (as an AE), as expected" if abs(frozen - ae) <= RANK_TOLERANCE
                          else f"frozen matrices {_compare(frozen, ae)} the AE, where no effect was expected")
        listed = ", ".join(f"{k} → {v}" for k, v in ranks.items())
        parts.append(f"**Tying (review 1):** {listed}; {frozen_verdict}.")
    return " ".join(parts) or "Depth and tying: not run yet."


def _depth_verdict(rows):
    """The AE (l = 0) against the stacks, then the stacks against each other."""
    ae = [row for row in rows if row["config"]["linear_layers"] == 0]
    stacks = sorted((row for row in rows if row["config"]["linear_layers"] > 0),
                    key=lambda row: row["config"]["linear_layers"])
    if not stacks:
        return "no stack was trained"
    ranks = [row["effective_rank"] for row in stacks]
    verdict = []
    if ae:
        if max(ranks) + RANK_TOLERANCE < ae[0]["effective_rank"]:
            verdict.append("every stack lowers the rank below the AE's")
        elif min(ranks) + RANK_TOLERANCE < ae[0]["effective_rank"]:
            verdict.append("some stacks lower the rank below the AE's")
        else:
            verdict.append("no stack lowers the rank below the AE's")
    shallow, deep = stacks[0], stacks[-1]
    if deep["effective_rank"] + RANK_TOLERANCE < shallow["effective_rank"]:
        verdict.append(f"deeper stacks lower it further ({shallow['label']} → {deep['label']})")
    elif shallow["effective_rank"] + RANK_TOLERANCE < deep["effective_rank"]:
        verdict.append(f"deeper stacks raise it ({shallow['label']} → {deep['label']})")
    elif max(ranks) == min(ranks):
        verdict.append(f"from {shallow['label']} to {deep['label']} the depth does not change it")
    else:
        verdict.append(f"from {shallow['label']} to {deep['label']} the depth changes it by at most "
                       f"{max(ranks) - min(ranks)}")
    return ", ".join(verdict)


def summary_latent_and_generation(documents):
    parts = []
    d = documents.get("latent-size")
    if d:
        irmae = _first(d, "IRMAE n=32 l=2")
        best_ae = min(_rows_like(d, "AE n="), key=lambda row: row["fid"]["gmm"])
        best_vae = min(_rows_like(d, "VAE n="), key=lambda row: row["fid"]["gmm"])
        winner = _best((irmae, best_ae, best_vae), lambda row: row["fid"]["gmm"])
        parts.append(
            f"**Small latent sizes (reviews 2, 4):** the best AE ({best_ae['label']}) reaches GMM FID "
            f"{best_ae['fid']['gmm']:.3g} at MSE {best_ae['mse']:.4f}, the best VAE ({best_vae['label']}) "
            f"{best_vae['fid']['gmm']:.3g}, IRMAE n=32 {irmae['fid']['gmm']:.3g} at MSE {irmae['mse']:.4f}: "
            f"best {winner}.")
    d = documents.get("generation")
    if d:
        lines = []
        for dataset in ("shapes", "digits"):
            rows = _rows(d, group=dataset)
            if rows:
                best = _best(rows, lambda row: row["fid"]["gmm"])
                lines.append(f"{dataset}: " + ", ".join(f"{r['label']} {r['fid']['gmm']:.3g}" for r in rows)
                             + f" (best {best})")
        parts.append("**Generation (GMM FID):** " + "; ".join(lines) + ".")
    return " ".join(parts) or "Latent size and generation: not run yet."


def _rows_like(document, prefix):
    return [row for row in document["rows"] if row["label"].startswith(prefix)]


def summary_downstream(documents):
    d = documents.get("downstream")
    if not d:
        return "Downstream classification: not run yet."
    rows = d["rows"]
    counts = list(dict.fromkeys(row["labels"] for row in rows))
    fewest, most = counts[0], counts[-1]

    def cells(count):
        return ", ".join(_error(row) for row in rows if row["labels"] == count)

    autoencoders = sorted((row for row in rows if row["labels"] == fewest and row["label"] != "supervised"),
                          key=lambda row: row["test_error"])
    best = autoencoders[0]
    verdict = (f"{best['label']}'s frozen features are best"
               + (", as the paper reports for IRMAE" if best["label"] == "IRMAE" else
                  ", not IRMAE's: this contradicts the paper at this budget"))
    if len(autoencoders) > 1:
        runner = autoencoders[1]
        spread = max(row["test_error_std"] or 0.0 for row in (best, runner))
        gap = runner["test_error"] - best["test_error"]
        if gap <= spread:
            verdict += (f", though the gap to {runner['label']} ({gap:.1f} points) is within one "
                        "standard deviation over the seeds")
    return (f"**Downstream (review 4, Table 2):** test error (mean ± standard deviation over "
            f"{best['seeds']} seeds) with {fewest} labels: {cells(fewest)}; with {most}: {cells(most)} "
            f"— with {fewest} labels {verdict}.")


def _error(row):
    std = row["test_error_std"]
    return f"{row['label']} {row['test_error']:.1f}" + ("" if std is None else f" ± {std:.1f}") + " %"


SUMMARIES = (summary_rank, summary_init_and_optimizer, summary_depth_and_tying,
             summary_latent_and_generation, summary_downstream)


def optimizer_line(document):
    """Which Adam trained the section's runs (results before the field used Keras')."""
    if document.get("adam_epsilon_placement", "keras") == "pytorch":
        return "Adam: PyTorch's update, as the official code (FusedAdam; docs/replay.md)."
    return ("Adam: **Keras' placement of ε**, which drifts from the official code in the first "
            "steps (docs/replay.md); these numbers are from before the fix and are being regenerated.")


def optimizer_summary(documents):
    """Which sections the corrected Adam made, while others still carry Keras' ε."""
    old = [name for name, document in documents.items()
           if document.get("adam_epsilon_placement", "keras") != "pytorch"]
    if not old:
        return []
    new = [name for name in documents if name not in old]
    return [f"Optimizer: {', '.join(new) or 'no section yet'} trained with Adam as the official code "
            f"(PyTorch's ε); {', '.join(old)} still with Keras' placement of ε, from before the fix "
            "(docs/replay.md), and being regenerated: the summary above mixes both where it "
            "draws on them.", ""]


def _section(name, document, out_root, report_dir):
    minutes = document["seconds"]["this_call"] / 60
    training = document["seconds"]["training_all_runs"] / 60
    runs = document["runs"]
    lines = [
        f"## {name}: {document['question']}",
        "",
        f"`{document['command']}` — {hardware_text(document['hardware'])}; "
        f"TensorFlow {document['hardware']['tensorflow']}. This call took {minutes:.1f} min "
        f"({runs['trained_now']} runs trained, {runs['reused']} reused from other experiments); "
        f"training all of its runs took {training:.1f} min. {optimizer_line(document)}",
        "",
        document["table"],
        "",
    ]
    for note in document["notes"]:
        lines += [note, ""]
    for file_name, caption in document["figures"]:
        path = os.path.relpath(os.path.join(out_root, name, file_name), report_dir)
        lines += [f"![{caption}]({path})", "", f"*{caption}.*", ""]
    return lines


def write_report(documents, out_root, report_path, others=None):
    """Writes the report: summary lines, Fig. 2's pair per budget, then one section
    per experiment that has run. `others`: {budget name: documents} of other budgets
    (the CPU page shows the paper budget's pair beside its own)."""
    from training.experiments.registry import EXPERIMENTS

    others = others or {}
    report_dir = os.path.dirname(os.path.abspath(report_path))
    budgets = sorted({d["budget"]["name"] for d in documents.values()})
    summaries = [summary(documents) for summary in SUMMARIES]
    summaries[0] += paper_budget_clause(others)  # the intrinsic-dimension line
    lines = [
        "# Results: what the experiments say about the reviewers' questions",
        "",
        *[f"{i}. {text}" for i, text in enumerate(summaries, 1)],
        "",
        f"Budget: {', '.join(budgets) or 'none run yet'} (see `python -m training.experiments --help`). "
        "Every number and figure on this page is written by the command shown in its section; "
        "`python -m training.experiments report` rebuilds this page from `docs/results/*/results.json`.",
        "",
        *optimizer_summary(documents),
        *budgets_section(documents, others, out_root, report_dir),
        *fig2_section(others, out_root, report_dir),
    ]
    for name in EXPERIMENTS:
        if name in documents:
            lines += _section(name, documents[name], out_root, report_dir)
    with atomic_path(report_path) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines).rstrip() + "\n")
