"""All benchmarks, one JSON object: `python -m benchmarks.run`.

Runs, each in a fresh process: `benchmarks.train_step` (Keras graph and XLA against
the PyTorch reference, FLOPs, fraction of the matmul peak), `benchmarks.data_pipeline`,
`benchmarks.inference`, `benchmarks.memory` and `benchmarks.profile`; then checks the
targets of the performance issue on their figures:

- training through `model.fit` at ≥ 1.2× the PyTorch reference's samples/s;
- each input pipeline at ≥ 10× the train step's samples/s at the same batch size;
- onnxruntime's batch-1 encoder latency ≤ 0.5× the SavedModel's and ≤ PyTorch's;
- folding the stack never slows the encoder.

About 13 minutes on 2 CPU cores (`--quick`: a smoke run of every part, about a
minute). Progress goes to stderr; the JSON object to stdout.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from benchmarks import common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTS = ("train_step", "data_pipeline", "inference", "memory", "profile")
# Which data pipeline feeds each architecture (digits: the offline stand-in for mnist,
# same 32x32x1 in-memory pipeline; a folder of 64x64 JPEGs for celeb_a).
PIPELINE_OF = {"shapes": "shapes", "mnist": "digits", "celeb_a": "folder_jpeg_64"}
PIPELINE_TARGET = 10.0
TRAIN_TARGET = 1.2

FULL_ARGS = {
    "train_step": ["--seconds", "10"],
    "data_pipeline": ["--generate", "20000", "--repeats", "3", "--shapes-size", "10000",
                      "--folder-images", "1000"],
    "inference": ["--seconds", "5"],
    "memory": ["--batch-sizes", "32"],
    "profile": ["--steps", "12", "--layer-seconds", "6"],
}
QUICK_ARGS = {
    "train_step": ["--quick"],
    "data_pipeline": ["--generate", "512", "--repeats", "1", "--shapes-size", "512",
                      "--folder-images", "64"],
    "inference": ["--quick"],
    "memory": ["--quick"],
    "profile": ["--quick"],
}


def run_part(part, args):
    """Runs `python -m benchmarks.PART ARGS`; its JSON object, or an error entry."""
    started = time.perf_counter()
    print(f"benchmarks.run: {part} {' '.join(args)}", file=sys.stderr, flush=True)
    completed = subprocess.run([sys.executable, "-m", f"benchmarks.{part}", *args], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    seconds = round(time.perf_counter() - started, 1)
    print(f"benchmarks.run: {part} done in {seconds} s", file=sys.stderr, flush=True)
    if completed.returncode != 0:
        return {"error": f"exit code {completed.returncode}", "wall_seconds": seconds}
    result = json.loads(completed.stdout)
    result["wall_seconds"] = seconds
    return result


def train_targets(train):
    ratios = train.get("keras_graph_vs_torch", {})
    return {"target": f"keras_graph >= {TRAIN_TARGET} x torch samples/s (medians, one run)",
            "ratios": ratios, "met": train.get("target_met")}


def pipeline_targets(train, pipeline):
    """Input pipeline images/s over the train step's samples/s, same batch size."""
    ratios = {}
    for architecture, entry in train.get("architectures", {}).items():
        rates = pipeline.get("pipeline_images_per_s", {}).get(PIPELINE_OF[architecture], {})
        for key, measured in entry.items():
            if not key.startswith("batch_") or "keras_graph" not in measured:
                continue
            batch = key.split("_", 1)[1]
            if batch in rates:
                slowest = min(rates[batch].values())  # first epoch (decoding) or later ones
                ratios[f"{architecture}_{key}"] = round(
                    slowest / measured["keras_graph"]["samples_per_s"], 1)
    return {"target": f"input pipeline >= {PIPELINE_TARGET} x the train step (slower of first "
                      "and later epochs)",
            "pipelines": PIPELINE_OF, "ratios": ratios,
            "met": bool(ratios) and all(r >= PIPELINE_TARGET for r in ratios.values())}


def inference_targets(inference):
    return {"onnx_latency_at_most_half_savedmodel": inference.get("onnx_latency_target_met"),
            "onnx_latency_at_most_torch": inference.get("onnx_latency_at_most_torch"),
            "folding_never_slower": inference.get("folding_never_slower")}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Every benchmark, each in a fresh process, and the issue's targets: "
                    "one JSON object on stdout (about 13 minutes on 2 CPU cores).")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="default: all")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of every part (about a minute)")
    parser.add_argument("--out", metavar="PATH",
                        help="also write the JSON object to PATH (atomically), the input of "
                             "`python -m benchmarks.readme PATH`")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    settings = QUICK_ARGS if args.quick else FULL_ARGS
    results = {part: run_part(part, settings[part]) for part in args.parts}
    train = results.get("train_step", {})
    targets = {"train_step": train_targets(train)}
    if "data_pipeline" in results:
        targets["input_pipeline"] = pipeline_targets(train, results["data_pipeline"])
    if "inference" in results:
        targets["inference"] = inference_targets(results["inference"])
    report = {
        "benchmark": "irmae-keras: train step, input pipeline, inference, memory, profile",
        "command": "python -m benchmarks.run" + (" --quick" if args.quick else ""),
        "machine": common.machine(("tensorflow", "keras", "torch", "onnxruntime")),
        "targets": targets,
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    common.emit_report(report, args.out)


if __name__ == "__main__":
    main()
