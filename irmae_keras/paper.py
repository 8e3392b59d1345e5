"""The paper's facts as code: its architectures and their sizes, what each dataset trains
with, its training settings, and the rank threshold.

Models, the run configuration, the data readers, the experiments, the benchmarks and the
docs tables read these; nobody restates them. (The trained models a user loads by name,
`Autoencoder.from_preset`, are `irmae_keras.pretrained`.) The sizes are the paper's (docs/paper.md):
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
ARCHITECTURES = {
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

# The official training settings: Adam (PyTorch's epsilon), batch, epochs, the AE+L1/L2
# code penalty and the VAE's beta.
LEARNING_RATE = 1e-4
ADAM_EPSILON = 1e-8
BATCH_SIZE = 32
EPOCHS = 100
PENALTY = 1e-4
KL_WEIGHT = 0.1
# The shapes data's split sizes (generated), hence the paper's step count.
SHAPES_TRAIN_IMAGES = 50_000
SHAPES_EVAL_IMAGES = 10_000
PAPER_STEPS = -(-SHAPES_TRAIN_IMAGES // BATCH_SIZE) * EPOCHS  # 156 300: 1 563 batches (the last short) x 100


def dataset_architecture(dataset):
    """The architecture a dataset trains with by default."""
    return DATASETS[dataset]["architecture"]


def dataset_image_shape(dataset):
    """The image shape a dataset is read at by default (its architecture's)."""
    return IMAGE_SHAPES[dataset_architecture(dataset)]


def intrinsic_dimension(dataset):
    """The dataset's known intrinsic dimension (7 for shapes), or None."""
    return DATASETS.get(dataset, {}).get("intrinsic_dimension")
