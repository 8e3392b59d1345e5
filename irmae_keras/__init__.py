"""irmae-keras: the Implicit Rank-Minimizing Autoencoder in TensorFlow/Keras.

Public API:
    build_autoencoder, Autoencoder (with `from_preset` / `save_to_preset`), list_presets, PRESETS, LinearStack, fold_linear_stack,
    singular_spectrum, effective_rank, the samplers (MultivariateGaussianSampler,
    GaussianMixtureSampler, PCAGridSampler), interpolate, frechet_distance,
    RankMonitor, and the modules `analysis`, `architectures`, `layers`,
    `models`, `optimizers`, `folding`, `sampling`, `fid`, `callbacks`, `plots`.
"""

from irmae_keras import analysis
from irmae_keras import architectures
from irmae_keras import callbacks
from irmae_keras import fid
from irmae_keras import folding
from irmae_keras import layers
from irmae_keras import models
from irmae_keras import optimizers
from irmae_keras import plots
from irmae_keras import presets
from irmae_keras import pretrained
from irmae_keras import sampling
from irmae_keras.analysis import effective_rank
from irmae_keras.analysis import singular_spectrum
from irmae_keras.callbacks import RankMonitor
from irmae_keras.fid import frechet_distance
from irmae_keras.folding import fold_linear_stack
from irmae_keras.layers import GaussianSampler
from irmae_keras.layers import LatentPenalty
from irmae_keras.layers import LinearStack
from irmae_keras.models import PRESETS
from irmae_keras.models import VARIANTS
from irmae_keras.models import Autoencoder
from irmae_keras.models import build_autoencoder
from irmae_keras.pretrained import list_presets
from irmae_keras.sampling import GaussianMixtureSampler
from irmae_keras.sampling import MultivariateGaussianSampler
from irmae_keras.sampling import PCAGridSampler
from irmae_keras.sampling import interpolate
from irmae_keras.version import __version__

__all__ = [
    "Autoencoder",
    "GaussianMixtureSampler",
    "GaussianSampler",
    "LatentPenalty",
    "LinearStack",
    "MultivariateGaussianSampler",
    "PCAGridSampler",
    "PRESETS",
    "RankMonitor",
    "VARIANTS",
    "__version__",
    "analysis",
    "architectures",
    "build_autoencoder",
    "callbacks",
    "effective_rank",
    "fid",
    "fold_linear_stack",
    "folding",
    "frechet_distance",
    "interpolate",
    "list_presets",
    "layers",
    "models",
    "optimizers",
    "plots",
    "presets",
    "pretrained",
    "sampling",
    "singular_spectrum",
]
