"""The figures section of benchmarks/README.md, rendered from `benchmarks.run`'s JSON.

    python -m benchmarks.run --out benchmarks/results/latest.json
    python -m benchmarks.readme benchmarks/results/latest.json   # rewrites the figures
    python -m benchmarks.states --out benchmarks/results/states.json
    python -m benchmarks.readme benchmarks/results/states.json   # rewrites the states

Replaces what lies between the README's `<!-- figures:begin -->` and
`<!-- figures:end -->` markers with tables built from the JSON object, so no figure in
the README is typed in. Missing parts (a `--parts` run, no torch) render as "n/a".
"""

import argparse
import json
import os
import sys

BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
# `python -m benchmarks.states --out J`'s figures go between their own markers.
STATES_BEGIN, STATES_END = "<!-- states:begin -->", "<!-- states:end -->"
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md")
NA = "n/a"
ARCHITECTURE_ORDER = ("shapes", "mnist", "celeb_a")


def _fmt(value, digits=1):
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(cell) if not isinstance(cell, str) else cell for cell in row)
              + " |" for row in rows]
    return "\n".join(lines)


def _batches(entry):
    return sorted((int(key.split("_", 1)[1]), value) for key, value in entry.items()
                  if key.startswith("batch_"))


def machine_line(report):
    m = report.get("machine", {})
    gpu = f"{m['gpus']} GPU(s)" if m.get("gpus") else "no GPU"
    versions = ", ".join(f"{name} {m[name]}" for name in ("tensorflow", "keras", "torch", "onnxruntime")
                         if m.get(name))
    return (f"Measured on {m.get('cpu', 'an unknown CPU')}, {m.get('cpu_cores', '?')} cores, {gpu}; "
            f"{versions}; `{report.get('command', 'python -m benchmarks.run')}` took "
            f"{report.get('seconds', 0) / 60:.1f} min.")


def train_section(train):
    rows = []
    for architecture, entry in train.get("architectures", {}).items():
        for batch, measured in _batches(entry):
            graph, jit, torch = (measured.get(k, {}) for k in ("keras_graph", "keras_jit", "torch"))
            rows.append([
                f"{architecture} (n={entry['latent_dim']}, l={entry['linear_layers']})", batch,
                entry["flops_per_sample"]["train"] / 1e6,
                graph.get("samples_per_s"), jit.get("samples_per_s"), torch.get("samples_per_s"),
                _fmt(graph.get("vs_torch"), 2) + "×", _fmt(graph.get("vs_torch_best_rounds"), 2) + "×",
                _fmt(100 * graph["fraction_of_peak"], 0) + " %" if "fraction_of_peak" in graph else NA,
                _fmt(100 * torch["fraction_of_peak"], 0) + " %" if "fraction_of_peak" in torch else NA,
            ])
    peak = train.get("matmul_peak_gflop_per_s_at_start")
    text = (f"Train step (forward + backward + Adam, MSE, float32) through `model.fit`, samples/s; "
            f"median of interleaved rounds. Float32 matmul peak (2048², same script): "
            f"{_fmt(peak)} GFLOP/s.\n\n")
    return text + _table(
        ["model", "batch", "train MFLOP/sample", "Keras graph", "Keras XLA", "PyTorch",
         "graph / PyTorch (median)", "(fastest rounds)", "graph % of peak", "PyTorch % of peak"],
        rows)


def pipeline_section(pipeline, targets):
    ratios = targets.get("input_pipeline", {}).get("ratios", {})
    of = {v: k for k, v in targets.get("input_pipeline", {}).get("pipelines", {}).items()}
    rows = []
    for name, by_batch in pipeline.get("pipeline_images_per_s", {}).items():
        for batch, rates in sorted(by_batch.items(), key=lambda item: int(item[0])):
            ratio = ratios.get(f"{of.get(name)}_batch_{batch}")
            rows.append([name, int(batch), rates["first_epoch"], rates["later_epochs"],
                         _fmt(ratio) + "×" if ratio is not None else NA])
    return ("Input pipelines alone, images/s (first epoch decodes/generates, later epochs read "
            "the cache), and the slower of the two over the train step of the architecture it "
            "feeds:\n\n" + _table(["pipeline", "batch", "first epoch", "later epochs",
                                   "over the train step"], rows))


def inference_section(inference):
    latency_rows, throughput_rows = [], []
    runtimes = ("keras_predict_on_batch", "keras_folded_predict_on_batch", "savedmodel",
                "onnxruntime", "torch")
    for architecture, entry in inference.get("architectures", {}).items():
        name = f"{architecture} (n={entry['latent_dim']}, l={entry['linear_layers']})"
        latency = entry.get("latency_ms_batch_1", {})
        latency_rows.append([name] + [_fmt(latency.get(r), 2) for r in runtimes]
                            + [_fmt(entry.get("onnx_to_savedmodel_latency_ratio"), 2) + "×"])
        throughput = entry.get("throughput_per_s_batch_256", {})
        throughput_rows.append([name] + [_fmt(throughput.get(r), 0) for r in runtimes]
                               + [_fmt(entry.get("folding_never_slower"))])
    header = ["encoder", "Keras", "Keras folded", "SavedModel", "onnxruntime", "PyTorch"]
    return ("Encoder latency at batch 1, ms (median call):\n\n"
            + _table(header + ["onnxruntime / SavedModel"], latency_rows)
            + "\n\nEncoder throughput at batch 256, samples/s:\n\n"
            + _table(header + ["folding never slower"], throughput_rows))


def memory_section(memory):
    rows = []
    for architecture, entry in memory.get("architectures", {}).items():
        for batch, measured in _batches(entry):
            keras, torch = measured.get("keras", {}), measured.get("torch", {})
            rows.append([architecture, batch, keras.get("parameters"), keras.get("peak"),
                         keras.get("training_mib"), torch.get("peak"), torch.get("training_mib")])
    return ("Peak resident memory of a training process, MiB (training = peak − after imports):\n\n"
            + _table(["model", "batch", "parameters", "Keras peak", "Keras training",
                      "PyTorch peak", "PyTorch training"], rows))


def profile_section(profile):
    rows = []
    for architecture, entry in profile.get("architectures", {}).items():
        for framework in ("tensorflow", "torch"):
            measured = entry.get(framework)
            if not measured:
                continue
            shares = measured.get("phase_share_percent", {})
            kinds = sorted(measured.get("op_kinds", {}).items(), key=lambda kv: -kv[1])[:3]
            rows.append([architecture, framework, measured.get("wall_ms_per_step"),
                         _fmt(shares.get("forward"), 0) + " %", _fmt(shares.get("backward"), 0) + " %",
                         _fmt(shares.get("optimizer"), 0) + " %",
                         ", ".join(f"{kind} {ms:.1f}" for kind, ms in kinds)])
    batch = profile.get("batch_size", "?")
    return (f"Where a train step's time goes (op-level profile at batch {batch}; ms per step "
            "unprofiled, shares of profiled op time, top op kinds in ms):\n\n"
            + _table(["model", "framework", "ms/step", "forward", "backward", "optimizer",
                      "top op kinds (ms)"], rows))


def targets_section(report):
    targets = report.get("targets", {})
    train = targets.get("train_step", {})
    ratios = train.get("ratios", {})
    below = [f"{k} {v:.2f}×" for k, v in ratios.items() if v is not None and v < 1.2]
    inference = targets.get("inference", {})
    rows = [
        ["training ≥ 1.2× PyTorch (every model and batch)", _fmt(train.get("met")),
         "below: " + ", ".join(below) if below else "all met"],
        ["input pipeline ≥ 10× the train step", _fmt(targets.get("input_pipeline", {}).get("met")), ""],
        ["onnxruntime batch-1 latency ≤ 0.5× SavedModel",
         _fmt(inference.get("onnx_latency_at_most_half_savedmodel")), ""],
        ["onnxruntime batch-1 latency ≤ PyTorch", _fmt(inference.get("onnx_latency_at_most_torch")), ""],
        ["folding never slows the encoder", _fmt(inference.get("folding_never_slower")), ""],
    ]
    return "Targets, checked by `benchmarks.run` on the figures above:\n\n" + _table(
        ["target", "met", "detail"], rows)


def _state_cells(state, labels, key):
    cells = []
    for label in labels:
        ratio = state.get("ratios", {}).get(label)
        value = ratio.get(key) if isinstance(ratio, dict) else None
        rates = state.get("samples_per_s", {}).get(label, {})
        if value is None:
            cells.append(NA)
        elif key == "graph_vs_torch":
            cells.append(f"{value:.2f}× ({_fmt(rates.get('keras_graph'), 0)} / {_fmt(rates.get('torch'), 0)})")
        else:
            cells.append(f"{value:.2f}×")
    return cells


def states_section(report):
    """The train step per machine state (`python -m benchmarks.states`)."""
    from benchmarks.states import STATES

    known = list(STATES)
    states = dict(sorted(report.get("states", {}).items(),
                         key=lambda item: known.index(item[0]) if item[0] in known else len(known)))
    labels = []
    for state in states.values():
        labels += [label for label in state.get("ratios", {}) if label not in labels and "_batch_" in label]
    order = list(ARCHITECTURE_ORDER)
    labels.sort(key=lambda label: (order.index(label.split("_batch_")[0]) if label.split("_batch_")[0] in order
                                   else len(order), int(label.split("_batch_")[1])))
    columns = [label.replace("_batch_", " ") for label in labels]
    machine_rows, graph_rows, user_rows = [], [], []
    for name, state in states.items():
        machine = state.get("machine", {})
        onednn = machine.get("onednn", {})
        peaks = state.get("matmul_peak_gflop_per_s", [])
        times = [t for t in state.get("cpu_time_during_run", []) if t]
        uses = onednn.get("tensorflow_uses_onednn")
        machine_rows.append([
            f"`{name}`", state.get("description", ""),
            f"{min(peaks):,.0f}–{max(peaks):,.0f}" if peaks else NA,
            NA if uses is None else ("oneDNN" if uses else "Eigen"),
            onednn.get("ONEDNN_MAX_CPU_ISA", NA),
            f"{max(t['busy_percent'] for t in times):.0f} % / {max(t['steal_percent'] for t in times):.1f} %"
            if times else NA,
        ])
        graph_rows.append([f"`{name}`"] + _state_cells(state, labels, "graph_vs_torch"))
        user_rows.append([f"`{name}`"] + _state_cells(state, labels, "user_vs_torch")
                         + [", ".join(_state_cells(state, labels, "user_vs_graph"))])
    from benchmarks.states import targets

    verdict = targets(states)  # from the figures, never from stored verdicts
    lowest = verdict["lowest_ratio"]
    profiles = []
    for name, state in states.items():
        profile = state.get("profile")
        if profile and "architectures" in profile:
            profiles.append(f"Profile in the `{name}` state. " + profile_section(profile))
    return "\n\n".join([
        f"`{report.get('command', 'python -m benchmarks.states')}` took {report.get('seconds', 0) / 60:.1f} min; "
        f"{_fmt((states.get('as-is') or next(iter(states.values()), {})).get('machine', {}).get('cpu'))}, "
        f"{_fmt(next(iter(states.values()), {}).get('machine', {}).get('cpu_cores'))} cores. "
        f"Target ≥ 1.0× PyTorch in every state with irmae-keras' defaults "
        f"({', '.join(f'`{name}`' for name in verdict['target_states'])}): "
        f"**{'met' if verdict['target_met'] else 'not met'}** (lowest ratio {_fmt(lowest, 2)}×); "
        f"goal 1.2×: **{'met' if verdict['goal_met'] else 'not met'}**.",
        "The states (matmul: float32 2048², TensorFlow, at the start of each architecture's run; "
        "CPU time: the machine's busiest run, any process, and the part stolen by the hypervisor):\n\n"
        + _table(["state", "what", "matmul GFLOP/s", "TensorFlow kernels", "oneDNN ISA limit",
                  "CPU busy / steal"], machine_rows),
        "Train step as `training.fit` builds it, Keras / PyTorch samples/s (medians of interleaved "
        "rounds; samples/s in brackets):\n\n" + _table(["state"] + columns, graph_rows),
        "The README's path (`build_autoencoder` + `compile()` defaults + `model.fit`) / PyTorch, "
        "and last its ratio to `training.fit`'s model in the same order:\n\n"
        + _table(["state"] + columns + ["over training.fit's"], user_rows),
        *profiles,
    ])


def render(report):
    if "states" in report:
        return states_section(report)
    results = report.get("results", {})
    sections = [machine_line(report), targets_section(report)]
    if "train_step" in results:
        sections.append(train_section(results["train_step"]))
    if "data_pipeline" in results:
        sections.append(pipeline_section(results["data_pipeline"], report.get("targets", {})))
    if "inference" in results:
        sections.append(inference_section(results["inference"]))
    if "memory" in results:
        sections.append(memory_section(results["memory"]))
    if "profile" in results:
        sections.append(profile_section(results["profile"]))
    return "\n\n".join(sections)


def update(readme_text, figures, begin=BEGIN, end=END):
    """`readme_text` with the figures between the markers replaced."""
    if begin not in readme_text or end not in readme_text:
        raise ValueError(f"the README has no {begin} ... {end} markers")
    head, rest = readme_text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{figures}\n{end}{tail}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readme", description=__doc__.split("\n\n")[0])
    parser.add_argument("json", help="a JSON object written by `python -m benchmarks.run --out` "
                                     "(the figures) or `python -m benchmarks.states --out` (the states)")
    parser.add_argument("--readme", default=README, help="default: benchmarks/README.md")
    args = parser.parse_args(argv)
    try:
        with open(args.json, encoding="utf-8") as handle:
            report = json.load(handle)
        with open(args.readme, encoding="utf-8") as handle:
            markers = (STATES_BEGIN, STATES_END) if "states" in report else (BEGIN, END)
            text = update(handle.read(), render(report), *markers)
    except (OSError, ValueError) as error:
        print(f"benchmarks.readme: {error}", file=sys.stderr)
        return 2
    from irmae_keras.staging import atomic_path

    with atomic_path(args.readme) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
    print(f"wrote {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
