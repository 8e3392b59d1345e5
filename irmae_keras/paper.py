"""The paper's facts as code: its architectures and their sizes, its training settings,
the shapes data's sizes and intrinsic dimension, and the rank threshold.

Models, the run configuration, the data readers, the experiments, the benchmarks and the
docs tables read these; nobody restates them. What each dataset trains with is its
`DataSource` record in `training.data` (the library knows no datasets). (The trained
models a user loads by name, `Autoencoder.from_preset`, are `irmae_keras.pretrained`.)
The sizes are the paper's (docs/paper.md):
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
# The shapes data's intrinsic dimension: its 7 generative factors (the paper's dashed line).
SHAPES_INTRINSIC_DIMENSION = 7

