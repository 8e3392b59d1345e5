"""Shared pieces of the benchmarks: the machine, interleaved timing, the matmul peak.

Its only library import is the preset table; the frameworks load where they are used.
"""

import importlib
import json
import os
import platform
import statistics
import time

from irmae_keras import paper

# The paper's sizes (latent n, stack depth l) per architecture, and the dataset
# whose run-config defaults go with each: the library's preset table.
ARCHITECTURES = {name: {"latent_dim": p["latent_dim"], "linear_layers": p["linear_layers"]}
                 for name, p in paper.ARCHITECTURES.items()}
DATASET_OF = {name: name for name in paper.ARCHITECTURES}
TORCH_SKIPPED = "skipped: torch not installed"


def add_architecture_arguments(parser, batch_sizes=None):
    """`--architectures` (default: all three) and, given defaults, `--batch-sizes`."""
    parser.add_argument("--architectures", nargs="+", choices=list(ARCHITECTURES),
                        default=list(ARCHITECTURES), help="default: all")
    if batch_sizes is not None:
        parser.add_argument("--batch-sizes", nargs="+", type=int, default=list(batch_sizes),
                            help="default: %(default)s")


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, or what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def version_of(module_name):
    """`module.__version__`, or None when the module is not installed."""
    try:
        return importlib.import_module(module_name).__version__
    except ImportError:
        return None


def torch_available():
    try:
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


def load_average():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


# The CPU flags that decide kernels here: the vector ISA, and those that make
# TensorFlow turn oneDNN on by default (irmae_keras.onednn).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")


def cpu_times():
    """The machine's CPU time counters (/proc/stat's first line), or None."""
    try:
        with open("/proc/stat", encoding="utf-8") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return dict(zip(names, map(int, fields[1:9])))


def busy_and_steal(since, until=None):
    """Percent of all CPU time since the `cpu_times()` snapshot `since` that was busy
    (any process) and that the hypervisor took for other guests (steal)."""
    until = until or cpu_times()
    if not since or not until:
        return None
    delta = {name: until[name] - since[name] for name in since}
    total = sum(delta.values()) or 1
    return {"busy_percent": round(100 * (total - delta["idle"] - delta["iowait"]) / total, 1),
            "steal_percent": round(100 * delta["steal"] / total, 1)}


def cpu_quota():
    """The cgroup's CPU limit in cores (cpu.max), or None when unlimited or unknown."""
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="utf-8") as handle:
            quota, period = handle.read().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else round(int(quota) / int(period), 2)


def machine(frameworks=("tensorflow", "keras")):
    """What the figures were measured on, and the state the machine was in: the
    figures of one CPU differ ~3x between states, so they are reported per state."""
    from irmae_keras import onednn

    gpus = onednn_on = None
    if "tensorflow" in frameworks:
        import tensorflow as tf

        gpus = len(tf.config.list_physical_devices("GPU"))
        onednn_on = onednn.enabled()
    flags = onednn.cpu_flags()
    mhz = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            mhz = next((round(float(line.split(":")[1])) for line in handle if line.startswith("cpu MHz")), None)
    except OSError:
        pass
    return {
        "cpu": cpu_model(),
        "cpu_mhz": mhz,
        "cpu_cores": os.cpu_count(),
        "schedulable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cgroup_cpu_quota": cpu_quota(),
        "isa_flags": [flag for flag in ISA_FLAGS if flag in flags],
        "gpus": gpus,
        "python": platform.python_version(),
        **{name: version_of(name) for name in frameworks},
        "onednn": {
            "tensorflow_uses_onednn": onednn_on,
            "tensorflow_default_on_this_cpu": onednn.tensorflow_default(flags) if flags else None,
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
            "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA", "unset"),
        },
        "load_average_1min": load_average(),
    }


def interleaved(runs, budget_s, min_rounds=3, max_rounds=1000):
    """Times each runner in turn, round after round, until the budget is spent.

    Args:
        runs: dict name → callable() returning the seconds per unit of work it
            measured (e.g. seconds per training step over one block of steps).
        budget_s: float. Wall-clock budget for all rounds together.
        min_rounds: int. Rounds run even past the budget.
        max_rounds: int. Upper bound on rounds.

    Returns:
        dict name → list of measurements, one per round. Every variant sees the same
        background load: on a shared machine the runs of one round are seconds apart.
    """
    times = {name: [] for name in runs}
    started = time.perf_counter()
    for round_index in range(max_rounds):
        if round_index >= min_rounds and time.perf_counter() - started >= budget_s:
            break
        for name, run in runs.items():
            times[name].append(run())
    return times


def summary(values, scale=1.0, digits=2):
    """Median, min and max of `values` times `scale`, rounded."""
    return {
        "median": round(statistics.median(values) * scale, digits),
        "min": round(min(values) * scale, digits),
        "max": round(max(values) * scale, digits),
        "n": len(values),
    }


def matmul_runner(size=2048, block_s=0.3):
    """callable() → seconds per float32 size² matmul in TensorFlow over one block.

    Interleaved with the measured variants, it gives the peak under the same load.
    """
    import tensorflow as tf

    a = tf.random.uniform((size, size), seed=1)
    b = tf.random.uniform((size, size), seed=2)
    matmul = tf.function(tf.linalg.matmul)
    matmul(a, b).numpy()
    begin = time.perf_counter()
    matmul(a, b).numpy()
    count = max(1, round(block_s / (time.perf_counter() - begin)))

    def run():
        begin = time.perf_counter()
        for _ in range(count):
            matmul(a, b).numpy()
        return (time.perf_counter() - begin) / count

    run.flops = 2 * size**3
    run.block_steps = count
    return run


def matmul_peak_gflops(size=2048, repeats=7, framework="tensorflow"):
    """float32 GFLOP/s of a size² × size² matmul (median of `repeats`).

    The ceiling the train step is compared with: 2·size³ FLOPs per product.
    """
    if framework == "torch":
        import torch

        a, b = torch.rand(size, size), torch.rand(size, size)

        def product():
            return a @ b
    else:
        import tensorflow as tf

        a = tf.random.uniform((size, size), seed=1)
        b = tf.random.uniform((size, size), seed=2)
        matmul = tf.function(tf.linalg.matmul)

        def product():
            return matmul(a, b).numpy()

    product()
    seconds = []
    for _ in range(repeats):
        begin = time.perf_counter()
        product()
        seconds.append(time.perf_counter() - begin)
    return round(2 * size**3 / statistics.median(seconds) / 1e9, 1)


def emit_report(report, out=None, indent=2):
    """Prints the benchmark's one JSON object and, with `out`, writes it there too
    (atomically: a reader never sees half a file)."""
    text = json.dumps(report, indent=indent)
    print(text)
    if out:
        from irmae_keras.staging import atomic_path

        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with atomic_path(out) as temp:
            with open(temp, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
