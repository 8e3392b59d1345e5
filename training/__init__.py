"""Training runs with irmae_keras: data, run configuration and directory, fit,
evaluation, classification, experiments.

Every module here builds on the library, which imports TensorFlow; the package
imports it once, first, with TensorFlow's C++ start-up logs kept off stderr, so
that a CLI's one-line error is not buried under them.
"""

import irmae_keras  # noqa: F401  (first: TensorFlow's oneDNN default, its start-up lines kept quiet)
