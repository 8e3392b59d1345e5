"""The experiments by name, each with the reviewer question it answers, in report order."""

from training.experiments import depth
from training.experiments import downstream
from training.experiments import generation
from training.experiments import init_scale
from training.experiments import latent_size
from training.experiments import optimizer
from training.experiments import shapes_rank
from training.experiments import training_length
from training.experiments import tying

EXPERIMENTS = {
    "shapes-rank": (shapes_rank.run, "Does IRMAE find the intrinsic dimension? (paper Fig. 2, 3)"),
    "training-length": (training_length.run, "Is it the budget that keeps the ranks low? Longer runs"),
    "init-scale": (init_scale.run, "Review 1: does the initial scale of the stack matter?"),
    "depth": (depth.run, "Reviews 3, 4: how deep should the stack be?"),
    "tying": (tying.run, "Review 1: tied, shared, frozen and nonlinear stacks"),
    "optimizer": (optimizer.run, "Review 3: is it Adam?"),
    "latent-size": (latent_size.run, "Reviews 2, 4: why not a small latent size?"),
    "downstream": (downstream.run, "Review 4, paper Table 2: downstream classification"),
    "generation": (generation.run, "Generation quality per sampler"),
}
