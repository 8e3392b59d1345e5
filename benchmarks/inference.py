"""Encoder inference speed: Keras (unfolded / folded), the SavedModel, onnxruntime, PyTorch.

`python -m benchmarks.inference` prints ONE JSON object: per architecture (random
weights at the paper's sizes) the batch-1 latency (median, ms) and the batch-256
throughput (samples/s) of each runtime, and the targets: onnxruntime's batch-1 latency
at most half the SavedModel's and at most the PyTorch reference encoder's
(`benchmarks.torch_reference`, NCHW, 2 threads, `torch.inference_mode`; "skipped: torch
not installed" without torch), and folding the stack never slower than the unfolded
Keras encoder. Progress goes to stderr. About 3-5 minutes on 2 CPU cores.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import irmae_keras  # noqa: E402,F401  (first: it sets TensorFlow's oneDNN default)
import keras  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # predict_on_batch retraces per batch size, by design here

from benchmarks import common  # noqa: E402
from export import litert  # noqa: E402
from export import onnx as onnx_export  # noqa: E402
from export import savedmodel  # noqa: E402

ARCHITECTURES = common.ARCHITECTURES
LATENCY_BATCH = 1
THROUGHPUT_BATCH = 256
TARGET_RATIO = 0.5
# Folding "never slows": the folded encoder within this factor of the unfolded one (the
# spread of repeated medians on the shared 2-core machine).
FOLDING_TOLERANCE = 1.1


def _interleaved_medians(runs, batch, min_calls, budget_s, block_s):
    """Median wall time of each `runs[name](batch)`, the runtimes taking turns in blocks.

    Each turn is a block of calls of about `block_s` seconds after one untimed call, so
    that all runtimes see the same background load on a shared machine while one
    runtime's idle thread pool (spinning after its last call) barely touches the next.
    """
    for run in runs.values():
        run(batch)  # warm-up: tracing, session initialisation, caches
    times = {name: [] for name in runs}
    start = time.perf_counter()
    while (min(len(t) for t in times.values()) < min_calls
           or time.perf_counter() - start < budget_s):
        for name, run in runs.items():
            run(batch)
            block = time.perf_counter()
            while True:
                begin = time.perf_counter()
                run(batch)
                times[name].append(time.perf_counter() - begin)
                if time.perf_counter() - block >= block_s:
                    break
    return ({name: statistics.median(values) for name, values in times.items()},
            {name: len(values) for name, values in times.items()})


def _torch_encoder(architecture):
    """callable(NHWC numpy batch) → codes of the PyTorch reference encoder.

    The NCHW copy of each input is made once, outside the timed calls: a PyTorch
    deployment would feed NCHW directly.
    """
    import torch

    from benchmarks import torch_reference

    torch_reference.set_threads()
    torch.manual_seed(0)
    model = torch_reference.IRMAE(architecture).eval()
    inputs = {}

    def encode(x):
        key = (x.__array_interface__["data"][0], x.shape)
        if key not in inputs:
            inputs[key] = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        with torch.inference_mode():
            return model.encode(inputs[key]).numpy()

    return encode


def _runtimes(model, folded, directory, threads):
    """name → callable(numpy batch) → numpy codes, for each runtime measured."""
    sm_path = os.path.join(directory, "savedmodel")
    savedmodel.write_savedmodel(folded, sm_path)
    encode = tf.saved_model.load(sm_path).signatures["encode"]
    onnx_path = os.path.join(directory, "encoder.onnx")
    onnx_export.write_onnx(folded.encoder, onnx_path, input_name="image",
                           output_name="code", opset=17, metadata={})
    litert_path = os.path.join(directory, "encoder.tflite")
    litert.write_litert(folded.encoder, litert_path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(onnx_path, options,
                                           providers=["CPUExecutionProvider"])
    return {
        "keras_call": lambda x: model.encoder(x, training=False).numpy(),
        "keras_predict_on_batch": model.encoder.predict_on_batch,
        # The same callable again: how much one runtime differs from itself.
        "keras_predict_on_batch_repeat": model.encoder.predict_on_batch,
        "keras_folded_call": lambda x: folded.encoder(x, training=False).numpy(),
        "keras_folded_predict_on_batch": folded.encoder.predict_on_batch,
        "savedmodel": lambda x: encode(image=tf.constant(x))["code"].numpy(),
        "onnxruntime": lambda x: session.run(None, {"image": x})[0],
        "litert": litert.runner(litert_path),
    }


def benchmark(architecture, threads, budget_s, use_torch):
    settings = ARCHITECTURES[architecture]
    keras.utils.set_random_seed(0)
    model = irmae_keras.build_autoencoder(architecture, **settings)
    folded = irmae_keras.fold_linear_stack(model)
    rng = np.random.default_rng(0)
    one = rng.random((LATENCY_BATCH, *model.image_shape), dtype=np.float32)
    many = rng.random((THROUGHPUT_BATCH, *model.image_shape), dtype=np.float32)
    with tempfile.TemporaryDirectory() as directory:
        runtimes = _runtimes(model, folded, directory, threads)
        reference = runtimes["keras_call"](many[:8])
        max_diff = {name: float(np.abs(run(many[:8]) - reference).max())
                    for name, run in runtimes.items()}
        if use_torch:
            # Its own random weights: compared for speed, not values.
            runtimes["torch"] = _torch_encoder(architecture)
        seconds, latency_calls = _interleaved_medians(runtimes, one, 20, budget_s, 0.25)
        latency = {name: round(1000 * value, 3) for name, value in seconds.items()}
        seconds, throughput_calls = _interleaved_medians(runtimes, many, 3, budget_s, 0.0)
        throughput = {name: round(THROUGHPUT_BATCH / value, 1) for name, value in seconds.items()}
    for name in runtimes:
        print(f"{architecture:8s} {name:30s} batch 1: {latency[name]:8.3f} ms  "
              f"batch {THROUGHPUT_BATCH}: {throughput[name]:9.1f}/s", file=sys.stderr, flush=True)
    ratio = latency["onnxruntime"] / latency["savedmodel"]
    folding = {
        f"{kind}_{measure}": round(values[f"keras_folded_{kind}"] / values[f"keras_{kind}"], 3)
        for kind in ("call", "predict_on_batch")
        for measure, values in (("latency", latency), ("throughput", throughput))
    }
    # Slowdown factors (above 1 = slower) of folding and of the repeated runtime.
    noise = {
        "latency": latency["keras_predict_on_batch_repeat"] / latency["keras_predict_on_batch"],
        "throughput": throughput["keras_predict_on_batch"]
                      / throughput["keras_predict_on_batch_repeat"],
    }
    slowdown = {"latency": folding["predict_on_batch_latency"],
                "throughput": 1 / folding["predict_on_batch_throughput"]}
    # Not slower: within FOLDING_TOLERANCE, or within what the same runtime measured
    # twice differs by. Judged on predict_on_batch, the compiled path (an eager call
    # carries ~10 ms of Python that drowns a change of one matmul).
    folding_ok = all(slowdown[key] <= max(FOLDING_TOLERANCE, noise[key], 1 / noise[key])
                     for key in slowdown)
    folding["same_runtime_twice_latency"] = round(noise["latency"], 3)
    folding["same_runtime_twice_throughput"] = round(1 / noise["throughput"], 3)
    versus_torch = common.TORCH_SKIPPED
    if "torch" in latency:
        versus_torch = {
            "onnx_to_torch_latency_ratio": round(latency["onnxruntime"] / latency["torch"], 3),
            "onnx_to_torch_throughput_ratio": round(
                throughput["onnxruntime"] / throughput["torch"], 3),
            "best_tf_or_onnx_to_torch_throughput_ratio": round(
                max(throughput[name] for name in throughput if name != "torch")
                / throughput["torch"], 3),
        }
        versus_torch["onnx_latency_at_most_torch"] = versus_torch["onnx_to_torch_latency_ratio"] <= 1
    return {
        **settings,
        "image_shape": list(model.image_shape),
        "encoder_parameters": int(model.encoder.count_params()),
        "latency_ms_batch_1": latency,
        f"throughput_per_s_batch_{THROUGHPUT_BATCH}": throughput,
        "max_abs_diff_vs_keras": max_diff,
        "timed_calls": {"latency": latency_calls, "throughput": throughput_calls},
        "onnx_to_savedmodel_latency_ratio": round(ratio, 3),
        "onnx_latency_target_met": ratio <= TARGET_RATIO,
        "folded_to_unfolded": folding,
        "folding_never_slower": folding_ok,
        "versus_torch": versus_torch,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.inference",
        description="Encoder latency and throughput: Keras, SavedModel, onnxruntime. "
                    "Prints one JSON object.")
    common.add_architecture_arguments(parser)
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="time budget of each interleaved measurement, all runtimes "
                             "together (default: %(default)s)")
    parser.add_argument("--no-torch", dest="torch", action="store_false",
                        help="skip the PyTorch reference encoder")
    parser.add_argument("--quick", action="store_true", help="shapes only, a short budget")
    args = parser.parse_args(argv)
    if args.quick:
        args.architectures, args.seconds = ["shapes"], 0.5
    use_torch = args.torch and common.torch_available()
    threads = os.cpu_count() or 1
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    results = {name: benchmark(name, threads, args.seconds, use_torch)
               for name in args.architectures}
    report = {
        "benchmark": "encoder inference, random weights, float32 NHWC",
        "machine": {
            "cpu": common.cpu_model(), "cpu_cores": os.cpu_count(), "gpu": bool(
                tf.config.list_physical_devices("GPU")),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "onnxruntime": onnxruntime.__version__,
            "torch": common.version_of("torch"),
            "load_average_1min": {"before": round(load_before, 2),
                                  "after": round(os.getloadavg()[0], 2)},
        },
        "settings": {
            "latency": f"median ms per call at batch {LATENCY_BATCH}",
            "throughput": f"samples/s at batch {THROUGHPUT_BATCH} (median call)",
            "method": "runtimes take turns in blocks (about 0.25 s of batch-1 calls, one "
                      "batch-256 call), each block after one untimed call",
            "onnxruntime_intra_op_threads": threads,
            "savedmodel_and_onnx_from": "the folded model (stack folded into one Dense)",
            "target": f"onnxruntime batch-1 latency <= {TARGET_RATIO} x the SavedModel's "
                      "and <= the PyTorch reference encoder's; the folded Keras encoder "
                      "(predict_on_batch) no slower than the unfolded one beyond "
                      f"{FOLDING_TOLERANCE}x or the spread of one runtime measured twice",
            "torch": "benchmarks.torch_reference encoder (own random weights), NCHW input "
                     "prepared outside the timed call, 2 threads, inference_mode"
                     if use_torch else common.TORCH_SKIPPED,
        },
        "architectures": results,
        "onnx_latency_target_met": all(r["onnx_latency_target_met"] for r in results.values()),
        "folding_never_slower": all(r["folding_never_slower"] for r in results.values()),
        "onnx_latency_at_most_torch": (
            all(r["versus_torch"]["onnx_latency_at_most_torch"] for r in results.values())
            if use_torch else common.TORCH_SKIPPED),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
