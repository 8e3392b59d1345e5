"""THE preset table: architectures, their paper sizes, and what each dataset trains with.

Models, the run configuration, the data readers, the benchmarks and the docs tables
read these tables; nobody restates them. The sizes are the paper's (docs/paper.md):
n and l for shapes and MNIST; CelebA's n and l are not stated in the paper, 512 and
4 are the common choice.

This module imports nothing: the TF-free tools may read it.
"""

# Architecture → the (height, width, channels) of the images it takes and returns.
IMAGE_SHAPES = {
    "shapes": (32, 32, 3),
    "mnist": (32, 32, 1),
    "celeb_a": (64, 64, 3),
}

# Architecture → its paper sizes: latent size n and stack depth l (for IRMAE).
PRESETS = {
    "shapes": {"architecture": "shapes", "latent_dim": 32, "linear_layers": 2},
    "mnist": {"architecture": "mnist", "latent_dim": 128, "linear_layers": 8},
    "celeb_a": {"architecture": "celeb_a", "latent_dim": 512, "linear_layers": 4},
}

# Dataset → the architecture (and so the preset) it trains with by default, the
# architectures its images fit, and its known intrinsic dimension. digits uses the
# mnist architecture; a folder of images is resized to any architecture and
# defaults to the celeb_a one.
DATASETS = {
    "shapes": {"architecture": "shapes", "fits": ("shapes",), "intrinsic_dimension": 7},
    "digits": {"architecture": "mnist", "fits": ("mnist",), "intrinsic_dimension": None},
    "mnist": {"architecture": "mnist", "fits": ("mnist",), "intrinsic_dimension": None},
    "celeb_a": {"architecture": "celeb_a", "fits": ("celeb_a",), "intrinsic_dimension": None},
    "folder": {"architecture": "celeb_a", "fits": tuple(IMAGE_SHAPES), "intrinsic_dimension": None},
}

# Singular values above this fraction of the largest count towards the effective rank.
RANK_THRESHOLD = 0.01


def dataset_architecture(dataset):
    """The architecture a dataset trains with by default."""
    return DATASETS[dataset]["architecture"]


def dataset_image_shape(dataset):
    """The image shape a dataset is read at by default (its architecture's)."""
    return IMAGE_SHAPES[dataset_architecture(dataset)]


def intrinsic_dimension(dataset):
    """The dataset's known intrinsic dimension (7 for shapes), or None."""
    return DATASETS.get(dataset, {}).get("intrinsic_dimension")
