"""Peak resident memory of training, per architecture: `python -m benchmarks.memory`.

Prints ONE JSON object. Each measurement runs in a fresh subprocess that trains the
model `python -m training.fit` builds (its compile defaults, `model.fit` on random
images in memory) for two compiled calls, and reports the peak resident set size of
its process (`VmHWM` in /proc/self/status, else `ru_maxrss`) after importing the
framework, after building the model, and at the end of training. The same for the
PyTorch reference where torch is installed. Training memory = peak − after import:
weights, Adam's two moments, gradients, activations and the framework's workspace.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from benchmarks import common

BATCH_SIZES = (32, 256)


def peak_rss_mib():
    """Peak resident set size of this process so far, MiB."""
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _child_keras(architecture, batch_size):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import irmae_keras  # noqa: F401  (first: it sets TensorFlow's oneDNN default)
    import tensorflow as tf

    import keras

    from benchmarks import train_step

    marks = {"after_import": peak_rss_mib()}
    model = train_step.build_keras_model(architecture, batch_size)
    images = train_step.random_images(architecture, train_step.DISTINCT_BATCHES * batch_size)
    dataset = (tf.data.Dataset.from_tensor_slices(images).batch(batch_size, drop_remainder=True)
               .cache().repeat().prefetch(tf.data.AUTOTUNE))
    marks["after_build"] = peak_rss_mib()
    model.fit(dataset, epochs=1, steps_per_epoch=2 * model.steps_per_execution, verbose=0,
              callbacks=[keras.callbacks.TerminateOnNaN()])
    marks["peak"] = peak_rss_mib()
    marks["parameters"] = int(model.count_params())
    return marks


def _child_torch(architecture, batch_size):
    from benchmarks import torch_reference

    torch_reference.set_threads()
    marks = {"after_import": peak_rss_mib()}
    model = torch_reference.IRMAE(architecture)
    step = torch_reference.make_train_step(model)
    batches = torch_reference.random_batches(architecture, batch_size)
    marks["after_build"] = peak_rss_mib()
    for batch in batches[:2]:
        step(batch)
    marks["peak"] = peak_rss_mib()
    marks["parameters"] = sum(p.numel() for p in model.parameters())
    return marks


def measure(framework, architecture, batch_size, timeout_s=600):
    """Runs one child process; its marks plus the training memory, MiB."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--child", framework, architecture,
         str(batch_size)],
        capture_output=True, text=True, timeout=timeout_s,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0]}
    marks = json.loads(completed.stdout.strip().splitlines()[-1])
    marks["training_mib"] = round(marks["peak"] - marks["after_import"], 1)
    marks["seconds"] = round(time.perf_counter() - started, 1)
    return marks


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        framework, architecture, batch_size = argv[1], argv[2], int(argv[3])
        child = _child_torch if framework == "torch" else _child_keras
        print(json.dumps(child(architecture, batch_size)))
        return
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.memory",
        description="Peak resident memory of training per architecture, Keras and the "
                    "PyTorch reference, one subprocess each. Prints one JSON object.")
    common.add_architecture_arguments(parser, BATCH_SIZES)
    parser.add_argument("--no-torch", dest="torch", action="store_false")
    parser.add_argument("--quick", action="store_true", help="shapes at batch 8 only")
    args = parser.parse_args(argv)
    if args.quick:
        args.architectures, args.batch_sizes = ["shapes"], [8]
    started = time.perf_counter()
    frameworks = ["keras"] + (["torch"] if args.torch and common.torch_available() else [])
    results = {}
    for architecture in args.architectures:
        entry = {}
        for batch_size in args.batch_sizes:
            print(f"memory: {architecture} batch {batch_size}", file=sys.stderr, flush=True)
            entry[f"batch_{batch_size}"] = {
                framework: measure(framework, architecture, batch_size) for framework in frameworks
            }
            if args.torch and "torch" not in frameworks:
                entry[f"batch_{batch_size}"]["torch"] = common.TORCH_SKIPPED
        results[architecture] = entry
    report = {
        "benchmark": "peak resident memory of training (MiB), one subprocess per measurement",
        "machine": {"cpu": common.cpu_model(), "cpu_cores": os.cpu_count(),
                    "tensorflow": common.version_of("tensorflow"),
                    "keras": common.version_of("keras"), "torch": common.version_of("torch")},
        "settings": {
            "keras": "training.fit's model and compile defaults, model.fit, two compiled calls",
            "torch": "benchmarks.torch_reference, two steps",
            "marks": "VmHWM after import, after building, at the end; training_mib = peak - after_import",
        },
        "architectures": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
