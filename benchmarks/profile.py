"""Where a train step's time goes: op-level profiles of Keras and of the PyTorch reference.

`python -m benchmarks.profile` prints ONE JSON object. For each architecture at one
batch size it runs `model.fit` (the `training.fit` model and compile defaults) under the
TensorFlow profiler and the PyTorch reference under `torch.profiler`, and reports per
step:

- `phases`: op time in the forward pass, the backward pass (gradients), the optimizer
  (Adam), the loss and metric, and the rest (input pipeline, bookkeeping);
- `op_kinds`: op time by kind (convolution forward / input gradient / weight gradient,
  transposed convolution, matmul, bias gradient, elementwise, Adam);
- for TensorFlow, `layers`: each layer's op time (forward + backward) with its FLOPs
  and the GFLOP/s it reached;
- `wall_ms_per_step` against `op_ms_per_step`: what the ops do not explain is framework
  overhead between them (or, above the wall time, ops running in parallel).

The profiler adds its own overhead: read the shares, not the absolute times.
"""

import argparse
import collections
import glob
import json
import os
import re
import statistics
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import irmae_keras  # noqa: E402,F401  (first: it sets TensorFlow's oneDNN default)
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks import train_step  # noqa: E402
from irmae_keras.flops import flops_per_sample  # noqa: E402
from irmae_keras.flops import model_layers  # noqa: E402

_SUFFIX = re.compile(r"_\d+$")  # Keras' name-scope suffix: conv_0_1 → conv_0


def _tf_phase(operation):
    if "/adam/" in operation or "fused_adam" in operation or "ApplyAdam" in operation:
        return "optimizer"
    if "compile_loss" in operation or "compile_metrics" in operation or "/mean_squared_error" in operation:
        return "loss_and_metric"
    if "gradient_tape" in operation:
        return "backward"
    if "_network" in operation or "linear_stack" in operation:
        return "forward"
    return "other"


def _tf_kind(op_type, operation):
    backward = "gradient_tape" in operation
    if "Adam" in op_type or "/adam/" in operation or "fused_adam" in operation:
        return "adam"
    if "Conv2DBackpropFilter" in op_type:
        return "conv_weight_grad"
    if "Conv2DBackpropInput" in op_type:
        # A transposed convolution's forward pass is a Conv2DBackpropInput.
        return "conv_input_grad" if backward else "conv_transpose_forward"
    if "Conv2D" in op_type:
        return "conv_transpose_input_grad" if backward else "conv_forward"
    if "MatMul" in op_type:
        return "matmul"
    if "BiasAddGrad" in op_type:
        return "bias_grad"
    if "Dataset" in op_type or "Iterator" in op_type or "Optional" in op_type:
        return "input_pipeline"
    return "elementwise_and_other"


def _framework_ops(xspace_files):
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    data, _ = plugin.xspace_to_tools_data(xspace_files, "framework_op_stats", {})
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    rows = [dict(zip(columns, [cell["v"] if cell else None for cell in row["c"]]))
            for row in table["rows"]]
    return [row for row in rows if row["type"] != "IDLE"]


def _grouped(pairs, steps):
    totals = collections.Counter()
    for key, microseconds in pairs:
        totals[key] += microseconds
    return {key: round(value / steps / 1000, 3) for key, value in totals.most_common()}


def tensorflow_profile(architecture, batch_size, steps):
    """Op times per step of `model.fit` under the TensorFlow profiler."""
    run = train_step.keras_runner(architecture, batch_size, "graph", block_s=0.0)
    model = run.model
    group = run.steps_per_execution
    steps = max(1, round(steps / group)) * group
    wall = run()  # one unprofiled block for the wall time
    images = train_step.random_images(architecture, train_step.DISTINCT_BATCHES * batch_size)
    dataset = (tf.data.Dataset.from_tensor_slices(images).batch(batch_size, drop_remainder=True)
               .cache().repeat().prefetch(tf.data.AUTOTUNE))
    model.fit(dataset, epochs=1, steps_per_epoch=group, verbose=0)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        started = time.perf_counter()
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
        profiled_wall = (time.perf_counter() - started) / steps
        tf.profiler.experimental.stop()
        ops = _framework_ops(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
    total = sum(op["total_self_time"] for op in ops) / steps / 1000
    per_layer_flops = flops_per_sample(model)["per_layer"]
    layer_ms = _grouped(
        ((_layer_of(op["operation"], per_layer_flops), op["total_self_time"]) for op in ops
         if _layer_of(op["operation"], per_layer_flops)
         and _tf_phase(op["operation"]) in ("forward", "backward")),
        steps)
    layers = {}
    for name, flops in per_layer_flops.items():
        milliseconds = layer_ms.get(name)
        # A layer's training FLOPs: forward, weight gradient, input gradient (not the first).
        train_flops = flops * (2 if name == next(iter(per_layer_flops)) else 3) * batch_size
        layers[name] = {
            "ms": milliseconds,
            "gflop_per_s": round(train_flops / milliseconds / 1e6, 1) if milliseconds else None,
        }
    return {
        "wall_ms_per_step": round(1000 * wall, 2),
        "wall_ms_per_step_profiled": round(1000 * profiled_wall, 2),
        "op_ms_per_step": round(total, 2),
        "steps_per_execution": group,
        "phases": _grouped(((_tf_phase(op["operation"]), op["total_self_time"]) for op in ops), steps),
        "op_kinds": _grouped(((_tf_kind(op["type"], op["operation"]), op["total_self_time"])
                              for op in ops), steps),
        "layers": layers,
        "ops_per_step": round(sum(op["occurrences"] for op in ops) / steps),
    }


def _layer_of(operation, names):
    """The layer (one of `names`) an op belongs to: a path segment `NAME` or `NAME_k`."""
    for segment in operation.split("/"):
        for candidate in (segment, _SUFFIX.sub("", segment)):
            if candidate in names:
                return candidate
    return None


_TORCH_KINDS = (
    ("convolution_backward", "conv_backward (input + weight grads)"),
    ("mkldnn_convolution", "conv_forward"),
    ("convolution", "conv_forward"),
    ("addmm", "matmul"),
    ("mm", "matmul"),
)
_TORCH_ADAM = ("lerp_", "addcdiv_", "addcmul_", "sqrt", "mul_", "div", "add_", "_foreach")


def _torch_kind(name, phase):
    name = name.replace("aten::", "")
    if phase == "optimizer" and name.startswith(_TORCH_ADAM):
        return "adam"
    for key, kind in _TORCH_KINDS:
        if name.startswith(key):
            return kind
    return "elementwise_and_other"


def torch_profile(architecture, batch_size, steps):
    """Self CPU time per step of the PyTorch reference, by phase and op kind."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile
    from torch.profiler import record_function

    from benchmarks import torch_reference

    torch_reference.set_threads()
    torch.manual_seed(0)
    model = torch_reference.IRMAE(architecture)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-8)
    batches = torch_reference.random_batches(architecture, batch_size)
    loss_fn = torch.nn.MSELoss()

    def step(x):
        with record_function("phase:forward"):
            optimizer.zero_grad(set_to_none=True)
            y = model(x)
        with record_function("phase:loss_and_metric"):
            loss = loss_fn(y, x)
        with record_function("phase:backward"):
            loss.backward()
        with record_function("phase:optimizer"):
            optimizer.step()

    for index in range(2):
        step(batches[index])
    started = time.perf_counter()
    for index in range(steps):
        step(batches[index % len(batches)])
    wall = (time.perf_counter() - started) / steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for index in range(steps):
            step(batches[index % len(batches)])
    phases, kinds = collections.Counter(), collections.Counter()
    # Attribute each aten op's self time to the phase whose record_function encloses it.
    events = sorted(prof.events(), key=lambda event: event.time_range.start)
    spans = [(e.time_range.start, e.time_range.end, e.name.split(":", 1)[1])
             for e in events if e.name.startswith("phase:")]
    for event in events:
        if not event.name.startswith("aten::") or event.self_cpu_time_total <= 0:
            continue
        start = event.time_range.start
        phase = next((name for begin, end, name in spans if begin <= start <= end), "other")
        phases[phase] += event.self_cpu_time_total
        kinds[_torch_kind(event.name, phase)] += event.self_cpu_time_total
    total = sum(phases.values())
    return {
        "wall_ms_per_step": round(1000 * wall, 2),
        "op_ms_per_step": round(total / steps / 1000, 2),
        "phases": {k: round(v / steps / 1000, 3) for k, v in phases.most_common()},
        "op_kinds": {k: round(v / steps / 1000, 3) for k, v in kinds.most_common()},
    }


def _torch_module(layer):
    """The PyTorch equivalent of one Keras layer (NCHW), activation included."""
    from torch import nn

    from irmae_keras.layers import LinearStack

    if isinstance(layer, LinearStack):
        n = layer.input.shape[-1]
        return nn.Sequential(*[nn.Linear(n, n, bias=False) for _ in range(layer.depth)])
    if isinstance(layer, keras.layers.Dense):
        module = nn.Linear(*layer.kernel.shape)
    else:
        size, stride = layer.kernel_size[0], layer.strides[0]
        padding = (size - 1) // 2 if layer.padding == "same" else 0
        transposed = isinstance(layer, keras.layers.Conv2DTranspose)
        channels_in = layer.input.shape[-1]
        cls = nn.ConvTranspose2d if transposed else nn.Conv2d
        module = cls(channels_in, layer.filters, size, stride=stride, padding=padding)
    if layer.activation is keras.activations.relu:
        return nn.Sequential(module, nn.ReLU())
    return module


def layer_timings(architecture, batch_size, budget_s, block_s=0.1):
    """Forward + backward of each layer alone, TensorFlow (NHWC) against PyTorch (NCHW).

    Each layer gets a random input and a random output gradient; the backward pass
    computes the weight gradients and, except for the first layer, the input gradient,
    as in a training step. Both frameworks take turns in blocks of `block_s`.
    """
    model = train_step.build_keras_model(architecture, batch_size)
    layers = model_layers(model)
    runs = {}
    use_torch = common.torch_available()
    if use_torch:
        from benchmarks import torch_reference

        torch_reference.set_threads()
    for index, layer in enumerate(layers):
        input_shape = (batch_size, *layer.input.shape[1:])
        output_shape = (batch_size, *layer.output.shape[1:])
        runs[f"{layer.name}/tensorflow"] = _timed_block(
            _tf_layer_step(layer, input_shape, output_shape, index > 0), block_s)
        if use_torch:
            runs[f"{layer.name}/torch"] = _timed_block(
                _torch_layer_step(_torch_module(layer), input_shape, output_shape, index > 0),
                block_s)
    seconds = common.interleaved(runs, budget_s, min_rounds=3)
    flops = flops_per_sample(model)["per_layer"]
    result = {}
    for index, layer in enumerate(layers):
        train_flops = flops[layer.name] * (3 if index else 2) * batch_size
        entry = {"train_mflop": round(train_flops / 1e6, 1)}
        for framework in ("tensorflow", "torch"):
            values = seconds.get(f"{layer.name}/{framework}")
            if values:
                median = statistics.median(values)
                entry[f"{framework}_ms"] = round(1000 * median, 3)
                entry[f"{framework}_gflop_per_s"] = round(train_flops / median / 1e9, 1)
        result[layer.name] = entry
    totals = {
        f"total_{framework}_ms": round(sum(entry[f"{framework}_ms"] for entry in result.values()), 2)
        for framework in ("tensorflow", "torch")
        if all(f"{framework}_ms" in entry for entry in result.values())
    }
    return {**result, **totals}


def _timed_block(step, block_s):
    step()
    begin = time.perf_counter()
    step()
    count = max(1, round(block_s / (time.perf_counter() - begin)))

    def run():
        begin = time.perf_counter()
        for _ in range(count):
            step()
        return (time.perf_counter() - begin) / count

    return run


def _tf_layer_step(layer, input_shape, output_shape, input_gradient):
    x = tf.random.uniform(input_shape, seed=1)
    upstream = tf.random.uniform(output_shape, seed=2)
    sources = list(layer.trainable_variables)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return tape.gradient(y, sources + ([x] if input_gradient else []),
                             output_gradients=upstream)

    return lambda: [g.numpy() for g in step(x)][0]


def _torch_layer_step(module, input_shape, output_shape, input_gradient):
    import torch

    def nchw(shape):
        return (shape[0], shape[-1], *shape[1:-1]) if len(shape) == 4 else shape

    x = torch.rand(nchw(input_shape), requires_grad=input_gradient)
    upstream = torch.rand(nchw(output_shape))

    def step():
        for parameter in module.parameters():
            parameter.grad = None
        x.grad = None
        module(x).backward(upstream)

    return step


def shares(entry):
    """Each phase's share of the op time, in percent."""
    total = sum(entry["phases"].values()) or 1.0
    return {name: round(100 * value / total, 1) for name, value in entry["phases"].items()}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile",
        description="Op-level profile of a train step (Keras model.fit and the PyTorch "
                    "reference): time by phase, op kind and layer. Prints one JSON object.")
    common.add_architecture_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=32, help="default: %(default)s")
    parser.add_argument("--steps", type=int, default=16,
                        help="profiled steps (celeb_a: a quarter) (default: %(default)s)")
    parser.add_argument("--layer-seconds", type=float, default=10.0,
                        help="budget of the per-layer timings per architecture (default: %(default)s)")
    parser.add_argument("--no-torch", dest="torch", action="store_false")
    parser.add_argument("--quick", action="store_true", help="shapes, batch 8, 2 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.architectures, args.batch_size, args.steps, args.layer_seconds = ["shapes"], 8, 2, 0.0
    warnings.filterwarnings("ignore", message=".*shuffle.*")
    started = time.perf_counter()
    results = {}
    for architecture in args.architectures:
        steps = max(2, args.steps // 4) if architecture == "celeb_a" else args.steps
        print(f"profile: {architecture} batch {args.batch_size}", file=sys.stderr, flush=True)
        entry = {"tensorflow": tensorflow_profile(architecture, args.batch_size, steps)}
        entry["layers_alone"] = layer_timings(architecture, args.batch_size, args.layer_seconds)
        entry["tensorflow"]["phase_share_percent"] = shares(entry["tensorflow"])
        if not args.torch:
            pass
        elif common.torch_available():
            entry["torch"] = torch_profile(architecture, args.batch_size, steps)
            entry["torch"]["phase_share_percent"] = shares(entry["torch"])
        else:
            entry["torch"] = common.TORCH_SKIPPED
        results[architecture] = entry
        keras.backend.clear_session()
    report = {
        "benchmark": "op-level profile of one train step (self time of each op, per step)",
        "machine": common.machine(("tensorflow", "keras", "torch")),
        "batch_size": args.batch_size,
        "architectures": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
