"""Does training replay the official code? Keras against the PyTorch reference, step by step.

Both frameworks start from the same initial weights (the Keras model's, copied into
`benchmarks.torch_reference.IRMAE`) and train on the same shapes batches in the same
order with Adam(1e-4, ε=1e-8) and the MSE loss. Two drifts are measured against the
PyTorch run:

- `loss`: the largest relative gap between the two loss curves, each smoothed by a
  moving average of `window` steps;
- `codes`: ‖E_keras(x) − E_torch(x)‖ / ‖E_torch(x)‖ over eval images after training.

What counts as "the same training" is the float-noise floor, measured in the same
call: the PyTorch run repeated from its initial weights plus N(0, 1e-6) noise. The
training is chaotic, so float32 rounding alone moves a run that far and no further.
A Keras optimizer replays the official code when its drifts are within
`TOLERANCE` × that floor. Keras' own placement of ε (before Adam's bias correction)
takes ~30× smaller early steps at IRMAE's ~1e-10 encoder gradients and lands far
outside it; `FusedAdam`'s default PyTorch placement lands inside (docs/replay.md).

    python -m benchmarks.replay                       # IRMAE l=2 and AE, 600 steps (~10 min on 2 cores)
    python -m benchmarks.replay --models irmae --steps 150

Prints one JSON object. Needs torch (`pip install -e ".[bench]"`).
"""

import argparse
import json
import sys
import time

import numpy as np

from benchmarks import common

# A placement replays the official code when both drifts are within this many times
# the float-noise floor (one perturbed run is itself a random draw of that floor).
TOLERANCE = 2.0
PERTURBATION = 1e-6
MODELS = {"irmae": {"variant": "irmae", "linear_layers": 2}, "ae": {"variant": "ae", "linear_layers": 0}}
PLACEMENTS = ("pytorch", "keras")


def shapes_batches(steps, batch_size, seed=0):
    """`steps` training batches of the shapes set (NHWC float32 in [0, 1])."""
    from training import data

    images, _ = data.generate_shapes(steps * batch_size, seed=seed, split="train")
    return images.reshape(steps, batch_size, *images.shape[1:])


def eval_images(count, seed=0):
    from training import data

    return data.generate_shapes(count, seed=seed, split="eval")[0]


def build_keras_model(model_name, seed):
    import keras

    import irmae_keras

    keras.utils.set_random_seed(seed)
    return irmae_keras.build_autoencoder("shapes", **MODELS[model_name])


def _weighted_layers(keras_model):
    layers = list(keras_model.encoder_network.layers) + list(keras_model.decoder_network.layers)
    return [layer for layer in layers if layer.weights]


def torch_copy(keras_model):
    """A `torch_reference.IRMAE` with the Keras model's weights (NCHW kernels)."""
    import torch

    from benchmarks import torch_reference

    stack = keras_model.linear_stack
    module = torch_reference.IRMAE("shapes", latent_dim=keras_model.latent_dim,
                                   linear_layers=len(stack.kernels) if stack else 0)
    convs = [m for m in list(module.encoder) + list(module.decoder)
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    layers = _weighted_layers(keras_model)
    if len(convs) != len(layers):
        raise ValueError(f"{len(layers)} Keras layers with weights against {len(convs)} torch convolutions")
    with torch.no_grad():
        for conv, layer in zip(convs, layers):
            kernel, bias = (np.asarray(w) for w in layer.get_weights())
            # Conv2D (h, w, in, out) and Conv2DTranspose (h, w, out, in) both map to
            # torch's (out, in, h, w) / (in, out, h, w) by the same transpose.
            conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            conv.bias.copy_(torch.from_numpy(bias))
        for linear, kernel in zip(module.stack, stack.kernels if stack else []):
            linear.weight.copy_(torch.from_numpy(np.asarray(kernel).T.copy()))  # x @ W
    return module


def perturb(module, scale, seed):
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return module


def train_torch(module, batches, lr=1e-4, threads=None):
    """Per-step losses of the PyTorch reference's Adam + MSE step, on `threads` torch
    threads (None: the reference's)."""
    import torch

    from benchmarks import torch_reference

    torch_reference.set_threads(threads)
    step = torch_reference.make_train_step(module, lr=lr)
    return np.array([float(step(torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()))) for batch in batches])


def torch_codes(module, images):
    import torch

    with torch.no_grad():
        return module.encode(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()


def train_keras(model, batches, placement, lr=1e-4):
    """Per-step losses of `FusedAdam` with `placement` + the model's MSE."""
    from irmae_keras.optimizers import FusedAdam

    model.compile(optimizer=FusedAdam(lr, epsilon=1e-8, epsilon_placement=placement))
    return np.array([float(model.train_on_batch(batch, batch, return_dict=True)["loss"])
                     for batch in batches])


def smoothed(losses, window):
    return np.convolve(losses, np.ones(window) / window, mode="valid")


CURVE_EVERY = 10  # steps between the points of a stored gap curve


def drift(losses, codes, reference_losses, reference_codes, window):
    """The two drifts of a run from the reference run (fractions, not %), and the
    smoothed loss curves' relative gap every CURVE_EVERY steps (for the figure)."""
    a, b = smoothed(losses, window), smoothed(reference_losses, window)
    gap = np.abs(a - b) / np.abs(b)
    return {
        "loss": float(np.max(gap)),
        "codes": float(np.linalg.norm(codes - reference_codes) / np.linalg.norm(reference_codes)),
        "loss_gap_curve": [float(v) for v in gap[::CURVE_EVERY]],
    }


def replay(model_name, steps=600, batch_size=32, window=50, eval_count=256, seed=0,
           placements=PLACEMENTS, torch_threads=None):
    """Drifts of each Keras placement and of the perturbed PyTorch run (the floor)
    from the PyTorch reference run, for one model. `torch_threads`: torch's intra-op
    threads (None: the reference's); 1 where the other cores are busy, since idle torch
    threads spin while they wait for a core."""
    batches = shapes_batches(steps, batch_size, seed)
    images = eval_images(eval_count, seed)
    window = min(window, steps)
    start = build_keras_model(model_name, seed)
    initial = [np.array(w) for w in start.get_weights()]

    reference = torch_copy(start)
    reference_losses = train_torch(reference, batches, threads=torch_threads)
    reference_codes = torch_codes(reference, images)
    noisy = perturb(torch_copy(start), PERTURBATION, seed)
    floor = drift(train_torch(noisy, batches, threads=torch_threads), torch_codes(noisy, images),
                  reference_losses, reference_codes, window)

    result = {"floor": floor, "placements": {}}
    for placement in placements:
        model = build_keras_model(model_name, seed)
        model.set_weights(initial)
        losses = train_keras(model, batches, placement)
        codes = np.asarray(model.encoder.predict(images, batch_size=256, verbose=0))
        measured = drift(losses, codes, reference_losses, reference_codes, window)
        measured["within_floor"] = all(measured[k] <= TOLERANCE * floor[k] for k in ("loss", "codes"))
        measured["final_loss"] = float(smoothed(losses, window)[-1])
        result["placements"][placement] = measured
    result["reference_final_loss"] = float(smoothed(reference_losses, window)[-1])
    return result


def save_figure(report, path):
    """The smoothed loss curves' relative gap to the PyTorch run over training, per
    model: the floor (perturbed PyTorch run) and each Keras placement."""
    from matplotlib.figure import Figure

    from irmae_keras.staging import atomic_path

    models = report["models"]
    figure = Figure(figsize=(5.2 * len(models), 3.6))
    window = report["settings"]["window"]
    for i, (name, result) in enumerate(models.items()):
        axes = figure.add_subplot(1, len(models), i + 1)
        runs = {"float-noise floor (PyTorch, init + 1e-6 noise)": result["floor"],
                **{f"Keras, epsilon placement '{p}'": r for p, r in result["placements"].items()}}
        for label, run in runs.items():
            steps = [window + CURVE_EVERY * k for k in range(len(run["loss_gap_curve"]))]
            axes.semilogy(steps, [max(v, 1e-6) for v in run["loss_gap_curve"]], label=label)
        axes.set_title(f"{name}: same weights and batches as PyTorch")
        axes.set_xlabel("training step")
        axes.set_ylabel("relative gap of the smoothed loss")
        axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    with atomic_path(path) as temp:
        figure.savefig(temp, dpi=110)


def thread_count(text):
    """argparse type of --torch-threads: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"takes an integer >= 1 (torch's intra-op threads), not {text!r}")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.replay",
        description="Keras training against the PyTorch reference from the same weights and "
                    "batches, judged against the float-noise floor (one JSON object).")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                        help="default: %(default)s")
    parser.add_argument("--steps", type=int, default=600, help="default: %(default)s")
    parser.add_argument("--batch-size", type=int, default=32, help="default: %(default)s")
    parser.add_argument("--window", type=int, default=50,
                        help="moving-average window of the loss curves (default: %(default)s)")
    parser.add_argument("--eval-images", type=int, default=256, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument("--torch-threads", type=thread_count, metavar="N",
                        help="torch's intra-op threads (default: the PyTorch reference's); the floor is "
                             "measured on the same threads, so the verdict does not depend on it, only "
                             "the time does: 1 is quicker where the other cores are busy")
    parser.add_argument("--out", metavar="FILE.json", help="also save the JSON there")
    parser.add_argument("--figure", metavar="FILE.png", help="also draw the loss-gap figure there")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not common.torch_available():
        print(json.dumps({"replay": common.TORCH_SKIPPED}))
        return 0
    started = time.time()
    import tensorflow as tf

    from benchmarks import torch_reference

    tf.config.run_functions_eagerly(False)
    threads = torch_reference.THREADS if args.torch_threads is None else args.torch_threads
    report = {
        "settings": {"steps": args.steps, "batch_size": args.batch_size, "window": args.window,
                     "eval_images": args.eval_images, "seed": args.seed, "lr": 1e-4,
                     "epsilon": 1e-8, "perturbation": PERTURBATION, "tolerance": TOLERANCE,
                     "torch_threads": threads},
        "machine": common.machine(frameworks=("tensorflow", "keras", "torch")),
        "models": {name: replay(name, args.steps, args.batch_size, args.window,
                                args.eval_images, args.seed, torch_threads=threads) for name in args.models},
    }
    report["seconds"] = round(time.time() - started, 1)
    if args.figure:
        save_figure(report, args.figure)
    common.emit_report(report, args.out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
