"""irmae-keras: the Implicit Rank-Minimizing Autoencoder in TensorFlow/Keras.

Public API:
    build_autoencoder, Autoencoder (with `from_preset` / `save_to_preset`), list_presets, ARCHITECTURES, LinearStack, fold_linear_stack,
    singular_spectrum, effective_rank, the samplers (MultivariateGaussianSampler,
    GaussianMixtureSampler, PCAGridSampler), interpolate, frechet_distance,
    RankMonitor, and the modules `analysis`, `architectures`, `layers`,
    `models`, `official`, `optimizers`, `folding`, `sampling`, `fid`, `callbacks`, `plots`,
    `paper` (the paper's numbers) and `pretrained` (the shipped presets).
"""

# First, before anything imports TensorFlow: its oneDNN kernels on every x86-64 CPU
# (TensorFlow turns them on by default only on the newest; see irmae_keras.onednn).
from irmae_keras import onednn
from irmae_keras import tf_logs

onednn.prefer_onednn()
# Then TensorFlow itself, without its C++ start-up lines (irmae_keras.tf_logs).
tf_logs.import_tensorflow_quietly()

from irmae_keras import analysis  # noqa: E402
from irmae_keras import architectures  # noqa: E402
from irmae_keras import callbacks  # noqa: E402
from irmae_keras import fid  # noqa: E402
from irmae_keras import folding  # noqa: E402
from irmae_keras import layers  # noqa: E402
from irmae_keras import models  # noqa: E402
from irmae_keras import official  # noqa: E402
from irmae_keras import optimizers  # noqa: E402
from irmae_keras import plots  # noqa: E402
from irmae_keras import paper  # noqa: E402
from irmae_keras import pretrained  # noqa: E402
from irmae_keras import sampling  # noqa: E402
from irmae_keras.analysis import effective_rank  # noqa: E402
from irmae_keras.analysis import singular_spectrum  # noqa: E402
from irmae_keras.callbacks import RankMonitor  # noqa: E402
from irmae_keras.fid import frechet_distance  # noqa: E402
from irmae_keras.folding import fold_linear_stack  # noqa: E402
from irmae_keras.layers import GaussianSampler  # noqa: E402
from irmae_keras.layers import LatentPenalty  # noqa: E402
from irmae_keras.layers import LinearStack  # noqa: E402
from irmae_keras.models import ARCHITECTURES  # noqa: E402
from irmae_keras.models import VARIANTS  # noqa: E402
from irmae_keras.models import Autoencoder  # noqa: E402
from irmae_keras.models import build_autoencoder  # noqa: E402
from irmae_keras.pretrained import list_presets  # noqa: E402
from irmae_keras.sampling import GaussianMixtureSampler  # noqa: E402
from irmae_keras.sampling import MultivariateGaussianSampler  # noqa: E402
from irmae_keras.sampling import PCAGridSampler  # noqa: E402
from irmae_keras.sampling import interpolate  # noqa: E402
from irmae_keras.version import __version__  # noqa: E402

onednn.check()

__all__ = [
    "Autoencoder",
    "GaussianMixtureSampler",
    "GaussianSampler",
    "LatentPenalty",
    "LinearStack",
    "MultivariateGaussianSampler",
    "PCAGridSampler",
    "ARCHITECTURES",
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
    "official",
    "onednn",
    "optimizers",
    "plots",
    "paper",
    "pretrained",
    "sampling",
    "singular_spectrum",
    "tf_logs",
]
