"""Running experiments with irmae_keras: data pipelines, the training CLI, evaluation.

Importing this package does not import TensorFlow; its modules do where they need it.
"""
