"""The train step in several machine states: `python -m benchmarks.states`.

One CPU model gives figures ~3x apart from one machine to the next, and the ratio to
PyTorch can flip with them. This runs `benchmarks.train_step` (Keras as `training.fit`
builds it, the README's `compile()` path, and the PyTorch reference, interleaved) once
per state, each in a fresh process, since every state is something TensorFlow or oneDNN
reads when it starts, or other processes beside it:

- `as-is`: this host as it is, with irmae-keras' defaults.
- `eigen`: `TF_ENABLE_ONEDNN_OPTS=0`. What TensorFlow itself picks on a CPU without
  AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX (Skylake-SP, Zen 2, Zen 3, most laptops
  before 2021): Eigen's kernels instead of oneDNN's. irmae-keras trained with them on
  such CPUs until it set oneDNN on itself (`irmae_keras.onednn`).
- `avx2`: `ONEDNN_MAX_CPU_ISA=AVX2`. oneDNN, TensorFlow's and PyTorch's alike, limited
  to AVX2, the vector ISA of such a CPU, with irmae-keras' default (oneDNN on).
- `avx2-eigen`: both: such a CPU as irmae-keras trained on it before.
- `busy`: one busy-loop process per core beside the benchmark, a shared server.

Prints one JSON object: per state, the machine state recorded inside the run (matmul
peak, load, CPU time busy and stolen, oneDNN on or off, ISA limit), the ratios, and with
`--profile` the op-level profile of where the step's time goes in that state.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from benchmarks import common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATES = {
    "as-is": ({}, False, "this host as it is, irmae-keras' defaults"),
    "eigen": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, False,
              "this host with Eigen kernels, TensorFlow's own default on a CPU without "
              "AVX512_VNNI/BF16, AVX_VNNI or AMX (irmae-keras before it set oneDNN on)"),
    "avx2": ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, False,
             "oneDNN (TensorFlow's and PyTorch's) limited to AVX2, irmae-keras' default (oneDNN on)"),
    "avx2-eigen": ({"ONEDNN_MAX_CPU_ISA": "AVX2", "TF_ENABLE_ONEDNN_OPTS": "0"}, False,
                   "AVX2 and Eigen kernels: such a CPU as irmae-keras trained on it before"),
    "busy": ({}, True, "one busy-loop process per core beside the benchmark"),
}
# `eigen` alone is no real machine (a CPU with AVX-512 VNNI gets oneDNN from TensorFlow
# too); `avx2-eigen` is the one that shows what changed.
DEFAULT_STATES = ("as-is", "avx2-eigen", "avx2", "busy")
# Per architecture, the batch sizes measured in every state (celeb_a at 256 takes
# minutes per round; `benchmarks.train_step` measures it in the as-is state).
SIZES = {"shapes": (32, 256), "mnist": (32, 256), "celeb_a": (32,)}
PROFILE_ARGS = ("--steps", "12", "--layer-seconds", "4")
TARGET = 1.0  # keras_graph and keras_user over torch, in every state
GOAL = 1.2
CLEAN_ENVIRONMENT = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA")


def start_busy_loops():
    """One busy-looping process per schedulable CPU, at normal priority."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cpus)]


def _run_json(command, env):
    completed = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, text=True)
    if completed.returncode != 0:
        return {"error": f"exit code {completed.returncode}"}
    return json.loads(completed.stdout)


def run_state(name, architectures, seconds, profile=()):
    """`benchmarks.train_step` per architecture in the state, and `benchmarks.profile`
    of the `profile` architectures; returns ({architecture: result}, profile result)."""
    environment, busy, _ = STATES[name]
    env = {key: value for key, value in os.environ.items() if key not in CLEAN_ENVIRONMENT}
    env.update(environment, TF_CPP_MIN_LOG_LEVEL="3")
    loops = start_busy_loops() if busy else []
    results, profiled = {}, None
    try:
        for architecture in architectures:
            print(f"benchmarks.states: {name}: {architecture}", file=sys.stderr, flush=True)
            results[architecture] = _run_json(
                ["benchmarks.train_step", "--architectures", architecture, "--batch-sizes",
                 *map(str, SIZES[architecture]), "--no-jit", "--user", "--seconds", str(seconds)], env)
        if profile:
            print(f"benchmarks.states: {name}: profile {' '.join(profile)}", file=sys.stderr, flush=True)
            profiled = _run_json(["benchmarks.profile", "--architectures", *profile, *PROFILE_ARGS], env)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    return results, profiled


def summarise(name, results, profile=None):
    """The state's machine record (from its first run), its ratios and its profile."""
    _, busy, description = STATES[name]
    entry = {"description": description, "environment": STATES[name][0], "busy_loops": busy,
             "ratios": {}, "samples_per_s": {}}
    if profile is not None:
        entry["profile"] = profile
    for architecture, result in results.items():
        if "error" in result:
            entry["ratios"][architecture] = result["error"]
            continue
        entry.setdefault("machine", result["machine"])
        entry.setdefault("matmul_peak_gflop_per_s", []).append(result["matmul_peak_gflop_per_s_at_start"])
        entry.setdefault("cpu_time_during_run", []).append(result.get("cpu_time_during_run"))
        for key, measured in result["architectures"][architecture].items():
            if not key.startswith("batch_"):
                continue
            label = f"{architecture}_{key}"
            entry["samples_per_s"][label] = {
                variant: measured[variant]["samples_per_s"]
                for variant in ("keras_graph", "keras_user", "torch") if variant in measured}
            entry["ratios"][label] = {
                "graph_vs_torch": measured["keras_graph"].get("vs_torch"),
                "user_vs_torch": measured.get("keras_user", {}).get("vs_torch"),
                "user_vs_graph": round(measured["keras_user"]["samples_per_s"]
                                       / measured["keras_graph"]["samples_per_s"], 3)
                if "keras_user" in measured else None,
            }
    return entry


def with_defaults(name):
    """Whether irmae-keras runs with its own defaults in the state (not the Eigen
    kernels it no longer leaves TensorFlow to pick)."""
    return STATES[name][0].get("TF_ENABLE_ONEDNN_OPTS") != "0"


def targets(states):
    """The targets, over the states in which irmae-keras' defaults apply: Keras
    (training.fit's model and the README's compile() path) against PyTorch."""
    ratios = [value for name, state in states.items() if with_defaults(name)
              for row in state["ratios"].values() if isinstance(row, dict)
              for key, value in row.items() if key in ("graph_vs_torch", "user_vs_torch") and value is not None]
    return {
        "target": f"keras_graph and keras_user >= {TARGET} x torch in every state with irmae-keras' "
                  f"defaults (goal {GOAL} x)",
        "target_states": [name for name in states if with_defaults(name)],
        "target_met": bool(ratios) and all(r >= TARGET for r in ratios),
        "goal_met": bool(ratios) and all(r >= GOAL for r in ratios),
        "lowest_ratio": min(ratios) if ratios else None,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.states",
        description="The train-step benchmark once per machine state (see the module "
                    "docstring); one JSON object on stdout.")
    parser.add_argument("--states", nargs="+", choices=list(STATES), default=list(DEFAULT_STATES),
                        help="default: %(default)s")
    parser.add_argument("--architectures", nargs="+", choices=list(SIZES), default=list(SIZES),
                        help="default: all")
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="interleaved rounds per architecture and batch size (default: %(default)s)")
    parser.add_argument("--profile", nargs="*", choices=list(SIZES), default=[],
                        help="also profile these architectures in each state (benchmarks.profile, "
                             "batch 32; e.g. --profile shapes mnist)")
    parser.add_argument("--out", metavar="PATH", help="also write the JSON object to PATH (atomically)")
    args = parser.parse_args(argv)
    if not common.torch_available():
        parser.exit(2, f"benchmarks.states: {common.TORCH_SKIPPED}; the states compare against PyTorch "
                       "(pip install -e '.[bench]').\n")
    started = time.perf_counter()
    states = {name: summarise(name, *run_state(name, args.architectures, args.seconds, args.profile))
              for name in args.states}
    report = {
        "benchmark": "train step per machine state: keras_graph (training.fit), keras_user "
                     "(build_autoencoder + compile()), torch; samples/s, medians of interleaved rounds",
        "command": "python -m benchmarks.states " + " ".join(sys.argv[1:] if argv is None else argv),
        "states": states,
        **targets(states),
        "seconds": round(time.perf_counter() - started, 1),
    }
    common.emit_report(report, args.out)


if __name__ == "__main__":
    main()
