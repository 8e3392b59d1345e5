"""`export_model`: from a trained Autoencoder to a verified export directory."""

import dataclasses
import datetime
import functools
import hashlib
import os
import sys

import keras
import numpy as np

import irmae_keras
from export import litert
from export import onnx as onnx_export
from export import savedmodel
from export import verify
from export.atomic import check_destination
from export.atomic import staged_directory
from export.errors import UsageError
from export.manifest import fingerprint
from export.manifest import FORMAT
from export.manifest import FORMAT_VERSION
from export.manifest import FORMATS
from export.manifest import package_versions
from export.manifest import write_manifest
from export.source import check_model
from irmae_keras.analysis import code_pca
from irmae_keras.folding import compact_autoencoder
from irmae_keras.folding import fold_linear_stack
from irmae_keras.paper import RANK_THRESHOLD


PREDICT_BATCH = 256
SAVEDMODEL_DIR = "savedmodel"
# ONNX file stem → the SavedModel signature of the same computation (and its names).
SIGNATURE_OF = {"encoder": "encode", "decoder": "decode", "autoencoder": "reconstruct"}


def check_formats(formats):
    """The formats as a tuple, or a UsageError naming the unknown one."""
    formats = tuple(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UsageError(f"--format takes a comma-separated list of {', '.join(FORMATS)}; "
                         f"got {','.join(formats) or 'nothing'}.")
    return formats


def parse_rank(rank):
    """`"auto"`, `"full"` or a positive int K, from a CLI string or a Python value."""
    if rank in ("auto", "full"):
        return rank
    value = int(rank) if isinstance(rank, str) and rank.strip().isdigit() else rank
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"--rank must be auto, full or an integer K >= 1; got {rank!r}.")
    return int(value)


def resolve_rank(rank, latent_dim, effective_rank=None):
    """K of the compact models for a parsed `rank`, or None for `"full"`."""
    if rank == "full":
        return None
    if rank == "auto":
        return None if effective_rank is None else max(1, effective_rank)
    if rank > latent_dim:
        raise UsageError(
            f"--rank {rank} exceeds the model's latent size {latent_dim}; "
            f"choose K from 1 to {latent_dim}, auto or full."
        )
    return rank


def _predict(function, inputs):
    return np.concatenate([
        keras.ops.convert_to_numpy(function(inputs[i:i + PREDICT_BATCH], training=False))
        for i in range(0, len(inputs), PREDICT_BATCH)
    ])


def _runner(function):
    return lambda batch: keras.ops.convert_to_numpy(function(batch, training=False))


def _check_images(images, image_shape):
    images = np.asarray(images)
    needed = max(verify.PARITY_BATCHES)
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
        raise UsageError(
            f"eval images must have shape (examples, {', '.join(map(str, image_shape))}) "
            f"for this model; got {images.shape}."
        )
    if len(images) < needed:
        raise UsageError(f"the export needs at least {needed} eval images; got {len(images)}.")
    images = images.astype("float32", copy=False)
    if not np.all(np.isfinite(images)) or images.min() < 0 or images.max() > 1:
        raise UsageError("eval images must be finite float values in [0, 1] (NHWC).")
    return images


def _weights_sha256(model):
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
        digest.update(f"{weight.path}{value.shape}{value.dtype}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


@dataclasses.dataclass
class _Evaluation:
    """The trained model's outputs on the eval images: what every artifact must match."""

    images: np.ndarray
    codes: np.ndarray
    reconstructions: np.ndarray


def _evaluate(model, images):
    return _Evaluation(images, _predict(model.encoder, images), _predict(model, images))


def _check_folding(folded, folded_codes, evaluation):
    """Folded vs trained on every eval image, within FOLD_TOLERANCE."""
    tolerance = verify.FOLD_TOLERANCE
    codes = verify.check_close("folded encoder", folded_codes, evaluation.codes, tolerance)
    reconstruction = verify.check_close(
        "folded autoencoder", _predict(folded, evaluation.images),
        evaluation.reconstructions, tolerance)
    return {"mode": folded.folded, "tolerance": tolerance,
            "max_abs_diff": {"codes": codes, "reconstruction": reconstruction},
            "allowed": {"codes": verify.allowance(tolerance, evaluation.codes),
                        "reconstruction": verify.allowance(tolerance, evaluation.reconstructions)}}


def _write_savedmodel(staging, folded, model, evaluation):
    path = os.path.join(staging, SAVEDMODEL_DIR)
    savedmodel.write_savedmodel(folded, path)
    runners, description = savedmodel.read_back(path)
    references = {"encode": (model.encoder, evaluation.images),
                  "decode": (model.decoder, evaluation.codes),
                  "reconstruct": (model, evaluation.images)}
    signatures = {
        name: {**description[name], "parity": verify.check_parity(
            f"{SAVEDMODEL_DIR} signature {name!r}", runners[name], _runner(reference), inputs)}
        for name, (reference, inputs) in references.items()
    }
    return {**fingerprint(staging, SAVEDMODEL_DIR), "format": "savedmodel",
            "signatures": signatures}


def _write_onnx(staging, stem, part, keras_model, reference, inputs, *, opset, metadata):
    """Writes `stem`.onnx from `keras_model`; checks it in onnxruntime against `reference`.

    `part` ("encoder", "decoder", "autoencoder") names the inputs and outputs.
    """
    name = f"{stem}.onnx"
    path = os.path.join(staging, name)
    input_name, output_name = savedmodel.SIGNATURES[SIGNATURE_OF[part]]
    proto = onnx_export.write_onnx(keras_model, path, input_name=input_name,
                                   output_name=output_name, opset=opset, metadata=metadata)
    parity = verify.check_parity(name, onnx_export.runner(path), _runner(reference), inputs)
    return {**fingerprint(staging, name), "format": "onnx", **onnx_export.describe(proto),
            "parity": parity}


def _write_full_onnx(staging, folded, model, evaluation, *, opset, metadata):
    parts = {"encoder": (folded.encoder, model.encoder, evaluation.images),
             "decoder": (folded.decoder, model.decoder, evaluation.codes),
             "autoencoder": (folded, model, evaluation.images)}
    return [
        _write_onnx(staging, part, part, *parts[part], opset=opset,
                    metadata=metadata(artifact=part, latent_size=model.latent_dim))
        for part in SIGNATURE_OF
    ]


def _write_litert(staging, folded, model, evaluation, *, quantize):
    """encoder/decoder `.tflite` (float32, or `_int8` with dynamic-range int8 weights),
    each run in the LiteRT interpreter against the Keras model."""
    artifacts = []
    for part, keras_model, reference, inputs, outputs in (
            ("encoder", folded.encoder, model.encoder, evaluation.images, evaluation.codes),
            ("decoder", folded.decoder, model.decoder, evaluation.codes, evaluation.reconstructions)):
        name = f"{part}{'_int8' if quantize else ''}.tflite"
        path = os.path.join(staging, name)
        litert.write_litert(keras_model, path, quantize=quantize)
        parity = verify.check_parity(name, litert.runner(path), _runner(reference), inputs,
                                     tolerance=litert.INT8_TOLERANCE if quantize else None)
        entry = {**fingerprint(staging, name), "format": "litert", **litert.describe(path),
                 "weights": "int8 (dynamic range)" if quantize else "float32", "parity": parity}
        if quantize:  # the accuracy cost, on every eval image
            # The trained model's outputs on every eval image are already in `evaluation`.
            output = litert.runner(path)(inputs)
            entry["int8_cost"] = {"max_abs_diff": verify.max_abs_diff(output, outputs),
                                  "mean_abs_diff": float(np.mean(np.abs(output - outputs)))}
        artifacts.append(entry)
    return artifacts


def _write_compact(staging, folded, evaluation, folded_codes, rank, *, opset, metadata):
    """The rank-K ONNX pair, checked, and how well the compact path reconstructs."""
    encoder, decoder = compact_autoencoder(folded, folded_codes, rank)
    coordinates = _predict(encoder, evaluation.images)
    compact = _predict(decoder, coordinates)
    variances = code_pca(folded_codes)[1]
    report = {
        "rank": rank,
        "explained_variance": float(variances[:rank].sum() / max(variances.sum(), 1e-30)),
        "mse": float(np.mean((compact - evaluation.images) ** 2)),
        "full_mse": float(np.mean((evaluation.reconstructions - evaluation.images) ** 2)),
        "max_abs_diff_vs_full": verify.max_abs_diff(compact, evaluation.reconstructions),
    }
    artifacts = [
        _write_onnx(staging, f"{part}_rank{rank}", part, keras_model, keras_model, inputs,
                    opset=opset, metadata=metadata(artifact=f"{part}_rank{rank}",
                                                   latent_size=rank, rank=rank))
        for part, keras_model, inputs in (("encoder", encoder, evaluation.images),
                                          ("decoder", decoder, coordinates))
    ]
    return report, artifacts


def export_model(model, out_dir, *, eval_images, dataset=None, rank="full", opset=17,
                 overwrite=False, absorb=False, source=None, formats=FORMATS, int8=False):
    """Exports a trained `Autoencoder` as a SavedModel and ONNX files, verified.

    The linear stack is folded first; every artifact is then checked against
    `model` in TensorFlow / onnxruntime at batch sizes 1 and 7 on `eval_images`.
    Everything is written in a staging directory beside `out_dir` and renamed
    into place only when all checks pass, so a failure leaves nothing behind
    (and an existing export, with `overwrite`, untouched).

    Args:
        model: `irmae_keras.Autoencoder`. The trained model (not modified).
        out_dir: str. The export directory to create.
        eval_images: float32 array (examples, H, W, C) in [0, 1], at least 7
            examples: parity inputs, and the codes for the effective rank and the
            compact models.
        dataset: str or None. Recorded in the metadata. Defaults to None.
        rank: `"full"` (no compact models), `"auto"` (K = effective rank) or an
            int K: also write `encoder_rank{K}.onnx` / `decoder_rank{K}.onnx`.
            Defaults to `"full"`.
        opset: int. ONNX opset (13 to 18). Defaults to 17.
        overwrite: bool. Replace an existing `out_dir`. Defaults to False.
        absorb: bool. Fold the stack into the encoder's last layer instead of one
            Dense. Defaults to False.
        source: dict or None. Where the model came from (`path`, `sha256`, ...),
            recorded in the manifest. Defaults to None.
        formats: tuple of str. Which of `FORMATS` to write: `"savedmodel"`, `"onnx"`
            (encoder, decoder, autoencoder and the compact pair), `"litert"`
            (`encoder.tflite`, `decoder.tflite`). Defaults to all three.
        int8: bool. Also write `encoder_int8.tflite` / `decoder_int8.tflite` with
            dynamic-range int8 weights and record their measured error. Defaults to
            False.

    Returns:
        The manifest (dict), also written as `out_dir/manifest.json`.

    Raises:
        UsageError: a bad argument; `verify.ParityError` (a UsageError) when a
            check fails.

    Example:
    ```python
    manifest = export.export_model(model, "saved_models/run/export",
                                   eval_images=images[:1000], dataset="shapes", rank="auto")
    ```
    """
    rank = parse_rank(rank)
    formats = check_formats(formats)
    check_model(model)
    resolve_rank(rank, model.latent_dim)
    onnx_export.check_opset(opset)
    images = _check_images(eval_images, model.image_shape)
    check_destination(out_dir, overwrite)
    try:
        folded = fold_linear_stack(model, absorb=absorb)
    except ValueError as error:
        raise UsageError(f"cannot fold the linear stack: {error}") from None

    evaluation = _evaluate(model, images)
    folded_codes = _predict(folded.encoder, images)
    folding = _check_folding(folded, folded_codes, evaluation)
    effective_rank = irmae_keras.effective_rank(folded_codes, threshold=RANK_THRESHOLD)
    rank_k = resolve_rank(rank, model.latent_dim, effective_rank)
    metadata = functools.partial(onnx_export.metadata, folded, effective_rank=effective_rank,
                                 dataset=dataset, version=irmae_keras.__version__)

    with staged_directory(out_dir, overwrite) as staging:
        artifacts = []
        if "savedmodel" in formats:
            artifacts.append(_write_savedmodel(staging, folded, model, evaluation))
        if "onnx" in formats:
            artifacts += _write_full_onnx(staging, folded, model, evaluation, opset=opset,
                                          metadata=metadata)
        if "litert" in formats:
            artifacts += _write_litert(staging, folded, model, evaluation, quantize=False)
            if int8:
                artifacts += _write_litert(staging, folded, model, evaluation, quantize=True)
        compact = None
        if rank_k and "onnx" in formats:
            compact, compact_artifacts = _write_compact(
                staging, folded, evaluation, folded_codes, rank_k, opset=opset,
                metadata=metadata)
            artifacts += compact_artifacts
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source": {**(source or {}), "weights_sha256": _weights_sha256(model)},
            "model": {
                "architecture": model.architecture,
                "variant": model.variant,
                "latent_dim": model.latent_dim,
                "linear_layers": model.linear_layers,
                "image_shape": list(model.image_shape),
                "folded": folded.folded,
            },
            "dataset": dataset,
            "layout": "NHWC",
            "value_range": [0.0, 1.0],
            "eval_images": len(images),
            "effective_rank": effective_rank,
            "rank_threshold": RANK_THRESHOLD,
            "spectrum": irmae_keras.singular_spectrum(folded_codes).tolist(),
            "folding": folding,
            "parity_tolerance": verify.PARITY_TOLERANCE,
            "parity_batches": list(verify.PARITY_BATCHES),
            "compact": compact,
            "artifacts": artifacts,
            "versions": {**package_versions(), "python": sys.version.split()[0]},
        }
        write_manifest(staging, manifest)
    return manifest
