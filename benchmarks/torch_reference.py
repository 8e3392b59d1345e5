"""A straightforward PyTorch IRMAE: the yardstick for `benchmarks.train_step`.

Written from the layer lists of docs/paper.md (not from the
official code): the same convolutions (kernel 4, stride 2, padding 1 unless
noted), the same bias-free linear stack, tanh output, MSE loss and
Adam(1e-4, eps=1e-8). PyTorch's default NCHW layout and default initialisation,
2 intra-op threads — what a PyTorch user would write without tuning.

torch is a benchmark-only dependency (`pip install -e ".[bench]"`); importing
this module without it raises ImportError, which the benchmarks report as
"skipped: torch not installed".

    python -m benchmarks.torch_reference --architecture mnist --batch-size 32
"""

import argparse
import json
import sys
import time

import torch
from torch import nn

from irmae_keras import paper

THREADS = 2
# (latent n, stack depth l) per architecture: the paper's defaults.
PRESETS = {name: (p["latent_dim"], p["linear_layers"]) for name, p in paper.ARCHITECTURES.items()}
IMAGE_SHAPES = {name: (c, h, w) for name, (h, w, c) in paper.IMAGE_SHAPES.items()}  # NCHW


def _conv(in_channels, out_channels):
    return nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1)


def _deconv(in_channels, out_channels):
    return nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)


def _relu_between(layers):
    """layers[0], ReLU, layers[1], ReLU, ..., ReLU after the last one too."""
    return [module for layer in layers for module in (layer, nn.ReLU())]


class Unflatten(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)


def build_encoder(architecture, latent_dim):
    if architecture == "shapes":
        convs = [_conv(3, 32), _conv(32, 64), _conv(64, 128), _conv(128, 256)]
        return nn.Sequential(*_relu_between(convs), nn.Conv2d(256, latent_dim, 2), nn.Flatten())
    channels = (1, 32, 64, 128, 256) if architecture == "mnist" else (3, 128, 256, 512, 1024)
    convs = [_conv(a, b) for a, b in zip(channels, channels[1:])]
    side = IMAGE_SHAPES[architecture][-1] // 16  # four stride-2 convolutions
    return nn.Sequential(*_relu_between(convs), nn.Flatten(),
                         nn.Linear(channels[-1] * side * side, latent_dim))


def build_decoder(architecture, latent_dim):
    if architecture == "shapes":
        return nn.Sequential(
            Unflatten((latent_dim, 1, 1)), nn.ConvTranspose2d(latent_dim, 256, 2), nn.ReLU(),
            *_relu_between([_deconv(256, 128), _deconv(128, 64), _deconv(64, 32)]),
            _deconv(32, 3), nn.Tanh(),
        )
    if architecture == "mnist":
        return nn.Sequential(
            nn.Linear(latent_dim, 8 * 8 * 128), Unflatten((128, 8, 8)), nn.ReLU(),
            *_relu_between([_deconv(128, 64), _deconv(64, 32)]),
            nn.ConvTranspose2d(32, 1, 1), nn.Tanh(),
        )
    return nn.Sequential(
        nn.Linear(latent_dim, 8 * 8 * 1024), Unflatten((1024, 8, 8)),  # no ReLU here
        *_relu_between([_deconv(1024, 512), _deconv(512, 256), _deconv(256, 128)]),
        nn.ConvTranspose2d(128, 3, 1), nn.Tanh(),
    )


class IRMAE(nn.Module):
    """Encoder → l bias-free n×n Linear layers → decoder."""

    def __init__(self, architecture, latent_dim=None, linear_layers=None):
        super().__init__()
        default_n, default_l = PRESETS[architecture]
        latent_dim = latent_dim or default_n
        linear_layers = default_l if linear_layers is None else linear_layers
        self.encoder = build_encoder(architecture, latent_dim)
        self.stack = nn.Sequential(
            *[nn.Linear(latent_dim, latent_dim, bias=False) for _ in range(linear_layers)]
        )
        self.decoder = build_decoder(architecture, latent_dim)

    def encode(self, x):
        return self.stack(self.encoder(x))

    def forward(self, x):
        return self.decoder(self.encode(x))


def set_threads(threads=None):
    """torch's intra-op threads: `threads`, or the reference's THREADS where None."""
    torch.set_num_threads(THREADS if threads is None else threads)


def make_train_step(model, lr=1e-4):
    """One MSE + Adam step on a batch (the paper's loss and optimizer)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-8)
    loss_fn = nn.MSELoss()

    def step(x):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), x)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def random_batches(architecture, batch_size, count=4, seed=0):
    """`count` random NCHW float32 batches in [0, 1] (rotated so no single
    buffer sits in cache)."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand((batch_size, *IMAGE_SHAPES[architecture]), generator=generator)
            for _ in range(count)]


def train_step_rate(architecture, batch_size, seconds=3.0, warmup_steps=3):
    """Samples/s of training steps on random data, timed over about `seconds`."""
    set_threads()
    torch.manual_seed(0)
    model = IRMAE(architecture)
    step = make_train_step(model)
    batches = random_batches(architecture, batch_size)
    for i in range(warmup_steps):
        step(batches[i % len(batches)])
    steps, started = 0, time.perf_counter()
    while True:
        step(batches[steps % len(batches)])
        steps += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return steps * batch_size / elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.torch_reference",
        description="Train-step samples/s of the PyTorch reference IRMAE (one JSON object).")
    parser.add_argument("--architecture", choices=list(PRESETS), default="mnist")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    rate = train_step_rate(args.architecture, args.batch_size, args.seconds)
    print(json.dumps({"architecture": args.architecture, "batch_size": args.batch_size,
                      "torch": torch.__version__, "threads": THREADS,
                      "samples_per_s": round(rate, 1)}))


if __name__ == "__main__":
    sys.exit(main())
