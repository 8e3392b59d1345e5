"""From a trained irmae_keras model to deployable SavedModel and ONNX artifacts."""
