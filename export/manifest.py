"""manifest.json: what an export holds, how to check it, and how well it matches.

Imports nothing heavy, so a deployment can verify its files with `verify_files`.
"""

import hashlib
import json
import os
from importlib import metadata

from export.atomic import write_file_atomic

MANIFEST = "manifest.json"
FORMAT = "irmae-keras-export"
FORMAT_VERSION = 1
# The artifact formats an export can hold.
FORMATS = ("savedmodel", "onnx", "litert")
PACKAGES = (
    "irmae-keras", "tensorflow", "keras", "numpy", "tensorflow-datasets",
    "tensorflow-probability", "tf2onnx", "onnx", "onnxruntime", "scikit-learn",
)


def package_versions():
    """Installed versions of the packages a run or an export depends on (None if absent)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def sha256_file(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _tree_files(path):
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            yield os.path.relpath(full, path).replace(os.sep, "/"), full


def sha256_tree(path):
    """sha256 over a directory: its sorted relative paths and their files' sha256."""
    digest = hashlib.sha256()
    for relative, full in _tree_files(path):
        digest.update(f"{relative}\0{sha256_file(full)}\n".encode())
    return digest.hexdigest()


def fingerprint(root, relative):
    """`{"path", "sha256", "bytes"}` of a file or directory below `root`."""
    full = os.path.join(root, relative)
    if os.path.isdir(full):
        size = sum(os.path.getsize(f) for _, f in _tree_files(full))
        return {"path": relative, "sha256": sha256_tree(full), "bytes": size}
    return {"path": relative, "sha256": sha256_file(full), "bytes": os.path.getsize(full)}


def write_manifest(directory, manifest):
    text = json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False) + "\n"
    write_file_atomic(os.path.join(directory, MANIFEST), lambda h: h.write(text.encode()))


def read_manifest(directory):
    with open(os.path.join(directory, MANIFEST), encoding="utf-8") as handle:
        return json.load(handle)


def verify_files(directory):
    """The artifacts of an export whose sha256 or size differ from its manifest."""
    manifest = read_manifest(directory)
    return [
        artifact["path"]
        for artifact in manifest["artifacts"]
        if fingerprint(directory, artifact["path"])
        != {key: artifact[key] for key in ("path", "sha256", "bytes")}
    ]


def summary_lines(manifest, directory):
    """A few human lines about an export, for the CLI's stdout."""
    model = manifest["model"]
    trained_on = f" trained on {manifest['dataset']}" if manifest.get("dataset") else ""
    lines = [f"exported the {model['variant']}{trained_on} ({model['architecture']} architecture, "
             f"{'x'.join(str(side) for side in model['image_shape'])} images, n={model['latent_dim']}, "
             f"folded={model['folded']}) to {directory}"]
    for artifact in manifest["artifacts"]:
        worst = max(
            (diff for parity in _parities(artifact) for diff in parity.values()), default=None
        )
        lines.append(f"  {artifact['path']:<24} {artifact['bytes']:>10,d} bytes  "
                     f"max abs diff vs Keras {worst:.2g}")
    fold = manifest["folding"]
    lines.append(f"folding ({fold['mode']}): max abs diff codes {fold['max_abs_diff']['codes']:.2g}, "
                 f"reconstructions {fold['max_abs_diff']['reconstruction']:.2g}")
    lines.append(f"effective rank (1 % threshold) on {manifest['eval_images']} eval images: "
                 f"{manifest['effective_rank']} of {manifest['model']['latent_dim']}")
    compact = manifest.get("compact")
    if compact:
        lines.append(
            f"compact rank {compact['rank']}: MSE {compact['mse']:.4g} vs full model "
            f"{compact['full_mse']:.4g}; max abs diff vs full reconstruction "
            f"{compact['max_abs_diff_vs_full']:.3g}; explained code variance "
            f"{100 * compact['explained_variance']:.2f} %"
        )
    return lines


def _parities(artifact):
    if "parity" in artifact:
        return [artifact["parity"]]
    return [s["parity"] for s in artifact.get("signatures", {}).values()]
