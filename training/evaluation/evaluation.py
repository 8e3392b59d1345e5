"""The evaluation protocols of a trained run as functions: spectrum and effective
rank, reconstruction, interpolation, MVG / GMM / PCA sampling, FID.

`evaluate(Settings(...))` runs the chosen tasks on the first images of the run's
eval split and merges the results into `evaluation.json`; `python -m
training.evaluate` is its command line. All numbers and figures are computed before
anything is written.
"""

import dataclasses
import json
import os
import time

from export.errors import UsageError
from export.manifest import sha256_file
from irmae_keras.paper import RANK_THRESHOLD
from training.rundir import RunDir
from training.rundir import locked_runs
from training.rundir import run_label

TASKS = ("spectrum", "reconstruction", "interpolation", "mvg", "gmm", "pca", "fid")
FEATURES = ("domain", "inception")
RESULTS_FILE = "evaluation.json"
DOMAIN_FEATURES_FILE = "domain_features.keras"
COMPARE_FILE = "spectrum_compare.png"
EVAL_IMAGES = 10_000  # the FID protocol's N (docs/evaluation.md)
GRID = 10  # every figure is a 10 x 10 grid
RECONSTRUCTION_IMAGES = 50  # 5 rows of originals, each above its reconstructions
INTERPOLATION_PAIRS = 10
INTERPOLATION_STEPS = 10
# The fewest eval images each task can work with; the grids shrink to what there is.
TASK_MIN_IMAGES = {"spectrum": 2, "reconstruction": 2, "interpolation": 2, "mvg": 2,
                   "gmm": 4, "pca": 5, "fid": 2}
MIN_EVAL_IMAGES = max(TASK_MIN_IMAGES.values())
# An evaluation holds the eval images, their reconstructions and as many samples in
# memory at once: refuse an --eval-size whose arrays would pass this share of the RAM.
MEMORY_SHARE = 0.5
COPIES_IN_MEMORY = 3
PCA_COMPONENTS = 4
GMM_COMPONENTS = 4
DOMAIN_TRAIN_IMAGES = 5_000
DOMAIN_EPOCHS = 5
DOMAIN_SEED = 0


@dataclasses.dataclass
class Settings:
    """The checked command line: what to compute, on what, where to."""

    run_dir: str
    tasks: tuple
    compare: list
    eval_size: int
    num_samples: int
    seed: int
    features: str
    inception_weights: str | None
    domain_features: str | None
    gmm_max_iter: int
    out: str


# ------------------------------------------------------------- loading a run


@dataclasses.dataclass
class EvaluatedRun:
    """A run and the eval images it is judged on.

    Attributes:
        run_dir: str.
        config: the run's `RunConfig`.
        model: its `irmae_keras.Autoencoder`.
        images: float32 (N, H, W, C), the first N eval images in their fixed order.
        codes: float64 (N, n), their codes after the linear stack (a VAE's mean).
    """

    run_dir: str
    config: object
    model: object
    images: object
    codes: object


def minimum_images(tasks):
    """The fewest eval images the tasks can be run on."""
    return max(TASK_MIN_IMAGES[task] for task in tasks)


def check_memory(eval_size, image_shape, flag="--eval-size"):
    """UsageError, before any work, for an evaluation whose arrays cannot fit in RAM."""
    per_image = 4 * COPIES_IN_MEMORY
    for side in image_shape:
        per_image *= side
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return
    if eval_size * per_image > MEMORY_SHARE * memory:
        fits = int(MEMORY_SHARE * memory // per_image)
        raise UsageError(
            f"{flag} {eval_size} needs about {eval_size * per_image / 2**30:.1f} GiB for its images "
            f"of {tuple(image_shape)}, more than half of this machine's "
            f"{memory / 2**30:.1f} GiB; use at most {fits}."
        )


def load_evaluated_run(run_dir, eval_size, tasks=("spectrum",)):
    """Loads a run, its first `eval_size` eval images and their codes."""
    from training import data
    from irmae_keras.sampling import encode

    config, model = RunDir(run_dir).load()
    images = data.run_eval_images(config, eval_size, model.image_shape)
    needed = minimum_images(tasks)
    if len(images) < needed:
        raise UsageError(
            f"the eval split of {config.dataset} holds {len(images)} images; --task "
            f"{'/'.join(tasks)} needs at least {needed}."
        )
    return EvaluatedRun(run_dir, config, model, images, encode(model, images))


def default_features(dataset):
    """FID's default extractor for `dataset`, from its `DataSource`: the offline domain
    network wherever InceptionV3's weights cannot be assumed (a folder's learns its classes
    or, without class folders, its images' rotations), "inception" for CelebA."""
    from training.data import registry

    return registry.get(dataset).fid_features


def intrinsic_dimension(config):
    from training.data import registry

    return registry.intrinsic_dimension(config.dataset)


# -------------------------------------------------------------------- results


class Results:
    """What an evaluation produces, held in memory until everything succeeded.

    Attributes:
        entries: dict task → JSON-ready dict (merged into evaluation.json).
        grids: dict file name → uint8 image grid (H, W, C).
        figures: dict file name → matplotlib Figure.
        new_extractor: `(path, DomainFeatures)` trained by this call, or None.
    """

    def __init__(self):
        self.entries = {}
        self.grids = {}
        self.figures = {}
        self.new_extractor = None

    def file_names(self):
        names = list(self.grids) + list(self.figures)
        if self.new_extractor:
            names.append(os.path.basename(self.new_extractor[0]))
        return sorted(names)

    def write(self, out, document):
        """Writes the files, then evaluation.json (which names them), each atomically."""
        from irmae_keras import plots
        from irmae_keras.staging import write_json_atomic

        for name, grid in self.grids.items():
            plots.save_grid(grid, os.path.join(out, name))
        for name, figure in self.figures.items():
            plots.save_figure(figure, os.path.join(out, name))
        if self.new_extractor:
            path, extractor = self.new_extractor
            extractor.save(path)
        write_json_atomic(os.path.join(out, RESULTS_FILE), document)


def spectrum_task(run, settings, results):
    from irmae_keras import plots
    from irmae_keras.analysis import spectrum_document

    entry = dict(spectrum_document(run.codes), intrinsic_dimension=intrinsic_dimension(run.config),
                 figure="spectrum.png")
    config = run.config
    results.figures["spectrum.png"] = plots.spectrum_figure(
        {f"{run_label(config)}: rank {entry['effective_rank']}": entry["singular_values"]},
        intrinsic_dim=entry["intrinsic_dimension"], threshold=RANK_THRESHOLD,
        title=f"Singular values of the eval codes ({config.dataset}, {config.model}, "
              f"l={config.linear_layers})")
    results.entries["spectrum"] = entry


def reconstruction_task(run, settings, results):
    import numpy as np

    from irmae_keras import plots
    from irmae_keras import sampling

    reconstructions = sampling.decode(run.model, run.codes)
    cols = min(GRID, len(run.images))
    shown = slice(0, min(RECONSTRUCTION_IMAGES, len(run.images)) // cols * cols)
    results.grids["reconstruction.png"] = plots.reconstruction_grid(
        run.images[shown], reconstructions[shown], cols=cols)
    results.entries["reconstruction"] = {
        "mse": float(np.mean((reconstructions - run.images) ** 2)),
        "num_images": int(len(run.images)),
        "clipped_to_unit_range": True,
        "figure": "reconstruction.png",
        "figure_images": shown.stop,
    }


def interpolation_task(run, settings, results):
    from irmae_keras import plots
    from irmae_keras import sampling

    pairs = min(INTERPOLATION_PAIRS, len(run.codes) // 2)
    starts = list(range(pairs))
    ends = [k + pairs for k in starts]
    path = sampling.interpolate(run.codes[starts], run.codes[ends], steps=INTERPOLATION_STEPS)
    images = sampling.decode(run.model, path.reshape(-1, path.shape[-1]))
    results.grids["interpolation.png"] = plots.image_grid(images, pairs, INTERPOLATION_STEPS)
    results.entries["interpolation"] = {
        "pairs": [[a, b] for a, b in zip(starts, ends)],
        "steps": INTERPOLATION_STEPS,
        "endpoints": "decoded eval codes (reconstructions)",
        "figure": "interpolation.png",
    }


class SamplerCache:
    """Samplers fitted once per (name, number of codes): the figures and FID share them."""

    def __init__(self, run, settings):
        self.run = run
        self.settings = settings
        self._fitted = {}

    def get(self, name, count=None):
        from irmae_keras import sampling

        count = count or len(self.run.codes)
        if (name, count) not in self._fitted:
            options = {"gmm": {"n_components": GMM_COMPONENTS, "max_iter": self.settings.gmm_max_iter},
                       "pca_grid": {"n_components": min(PCA_COMPONENTS, self.run.codes.shape[1]),
                                    "rows": GRID, "cols": GRID}}.get(name, {})
            try:
                sampler = sampling.build_sampler(name, **options).fit(self.run.codes[:count])
            except ValueError as error:
                raise UsageError(
                    f"the {name} sampler cannot be fitted on {count} eval codes of "
                    f"{self.run.run_dir}: {error}" + (" (--gmm-max-iter sets max_iter)" if name == "gmm" else "")
                ) from None
            self._fitted[name, count] = sampler
        return self._fitted[name, count]


def _sampler_details(name, sampler):
    if name == "mvg":
        return {"jitter": sampler.jitter}
    mixture = sampler.mixture
    return {"n_components": sampler.n_components, "covariance_type": sampler.covariance_type,
            "reg_covar": sampler.reg_covar, "em_seed": sampler.seed, "max_iter": sampler.max_iter,
            "em_iterations": int(mixture.n_iter_), "weights": [float(w) for w in mixture.weights_]}


def _sampler_task(name, run, settings, results, samplers):
    from irmae_keras import plots
    from irmae_keras import sampling

    sampler = samplers.get(name)
    images = sampling.generate(run.model, sampler, n=GRID * GRID, seed=settings.seed)
    results.grids[f"{name}.png"] = plots.image_grid(images, GRID, GRID)
    results.entries[name] = dict(
        _sampler_details(name, sampler), fitted_on_codes=int(len(run.codes)),
        seed=settings.seed, figure=f"{name}.png",
    )


def mvg_task(run, settings, results, samplers):
    _sampler_task("mvg", run, settings, results, samplers)


def gmm_task(run, settings, results, samplers):
    _sampler_task("gmm", run, settings, results, samplers)


def pca_task(run, settings, results, samplers):
    import numpy as np

    from irmae_keras import plots
    from irmae_keras import sampling

    if run.codes.shape[1] < 2:
        raise UsageError("the PCA grid needs codes of at least 2 dimensions; this run's have 1.")
    sampler = samplers.get("pca_grid")
    images = sampling.generate(run.model, sampler, n=None)
    results.grids["pca.png"] = plots.image_grid(images, GRID, GRID)
    total = float(np.sum(np.var(run.codes, axis=0, ddof=1)))
    results.entries["pca"] = {
        "n_components": sampler.n_components,
        "stddevs": [float(s) for s in sampler.stddevs],
        "explained_variance_ratio": [float(s**2 / total) if total > 0 else 0.0 for s in sampler.stddevs],
        "extent_stddevs": sampler.extent,
        "grid": "row i: second component, column j: first",
        "fitted_on_codes": int(len(run.codes)),
        "figure": "pca.png",
    }


# ------------------------------------------------------------------------ FID


@dataclasses.dataclass
class Extractor:
    """A feature extractor for FID and how it was obtained."""

    features: object  # callable images -> (N, d)
    info: dict
    save_to: str | None = None  # a newly trained DomainFeatures file to write with the results


def build_extractor(run, settings):
    """The FID extractor `settings` ask for; a domain CNN is loaded or trained (not saved)."""
    from irmae_keras import fid

    if settings.features == "inception":
        try:
            path = fid.find_inception_weights(settings.inception_weights)
        except ValueError as error:
            raise UsageError(
                f"--features inception: {error} (here: --inception-weights FILE; or score with "
                "--features domain, which needs no download)") from None
        extractor = fid.InceptionFeatures(weights_path=path)
        return Extractor(extractor, {"name": extractor.name, "features": "inception",
                                     "weights_file": os.path.abspath(path)})
    path = settings.domain_features or os.path.join(settings.out, DOMAIN_FEATURES_FILE)
    if os.path.isfile(path):
        try:
            extractor = fid.DomainFeatures.load(path)
        except ValueError as error:
            raise UsageError(f"{path}: {error}") from None
        expected = tuple(run.model.image_shape)
        if tuple(extractor.model.input_shape[1:]) != expected:
            raise UsageError(
                f"{path} takes images of shape {tuple(extractor.model.input_shape[1:])}, this run's "
                f"are {expected}: use an extractor trained on {run.config.dataset}."
            )
        return Extractor(extractor, {"name": extractor.name, "features": "domain",
                                     "file": os.path.abspath(path), "sha256": sha256_file(path),
                                     "trained_now": False})
    extractor, training = train_domain_features(run)
    return Extractor(extractor, {"name": extractor.name, "features": "domain",
                                 "file": os.path.abspath(path), "trained_now": True,
                                 "training": training}, save_to=path)


def train_domain_features(run):
    """A `DomainFeatures` CNN trained on the run's train labels (classes or shapes
    factors), or, for images without labels (a folder without class folders), on the
    rotation task."""
    from irmae_keras import fid
    from training import data

    config = run.config
    info = data.dataset_info(config.dataset, config.data_dir)
    labelled = not (info.label_kind == "class" and info.num_classes is None)
    limit = min(DOMAIN_TRAIN_IMAGES, config.train_size or DOMAIN_TRAIN_IMAGES)
    loaded = data.load_arrays(
        config.dataset, "train", limit=limit, labels=labelled, seed=config.seed,
        data_dir=config.data_dir, skip_corrupt=config.skip_corrupt, image_shape=run.model.image_shape,
    )
    images, labels = loaded if labelled else (loaded, None)
    extractor = fid.DomainFeatures().fit(images, labels, epochs=DOMAIN_EPOCHS, seed=DOMAIN_SEED)
    return extractor, {"train_images": int(len(images)), "epochs": DOMAIN_EPOCHS,
                       "seed": DOMAIN_SEED, "final_loss": float(extractor.history["loss"][-1]),
                       "targets": info.label_kind if labelled else "rotation"}


def fid_task(run, settings, results, samplers, extractor):
    import numpy as np

    from irmae_keras import fid
    from irmae_keras import sampling
    from training import data

    count = min(settings.num_samples, len(run.images))
    real, codes = run.images[:count], run.codes[:count]

    def statistics(images):
        return fid.feature_statistics(extractor.features(images))

    real_statistics = statistics(real)
    config = run.config
    train_images = data.load_arrays(
        config.dataset, "train", limit=count, seed=config.seed, data_dir=config.data_dir,
        skip_corrupt=config.skip_corrupt, image_shape=run.model.image_shape,
    )
    # Pairs (i, i + N/2): every eval code is an endpoint, no code is paired with itself.
    partners = (np.arange(count) + count // 2) % count
    midpoints = sampling.interpolate(codes, codes[partners], steps=3)[:, 1]
    generated = {
        "mvg": sampling.generate(run.model, samplers.get("mvg", count), n=count, seed=settings.seed),
        "gmm": sampling.generate(run.model, samplers.get("gmm", count), n=count, seed=settings.seed),
        "interpolation": sampling.decode(run.model, midpoints),
        "reconstruction": sampling.decode(run.model, codes),
        "train_images": train_images,
    }
    values = {name: fid.frechet_distance(*real_statistics, *statistics(images))
              for name, images in generated.items()}
    results.entries["fid"] = {
        "values": values,
        "extractor": extractor.info,
        "num_images": count,
        "num_train_images": int(len(train_images)),
        "seed": settings.seed,
        "samplers_fitted_on": f"the codes of the first {count} eval images",
        "interpolation": "midpoints of the eval code pairs (i, i + N/2 mod N)",
        "reconstruction": "the N eval images' reconstructions: the floor through this decoder",
        "train_images": "the first N train images: the floor of a perfect generator at this N",
    }
    if extractor.save_to:
        results.new_extractor = (extractor.save_to, extractor.features)


# -------------------------------------------------------------- compare runs


def compare_spectra(runs, results):
    """Overlays the spectra of several runs (paper Fig. 2) as spectrum_compare.png."""
    from irmae_keras import plots
    from irmae_keras.analysis import spectrum_document

    spectra, rows = {}, []
    for run in runs:
        numbers = spectrum_document(run.codes)
        spectra[f"{run_label(run.config)}: rank {numbers['effective_rank']}"] = numbers["singular_values"]
        rows.append({"run_dir": os.path.abspath(run.run_dir), "run_name": run.config.run_name,
                     "dataset": run.config.dataset, "model": run.config.model,
                     "linear_layers": run.config.linear_layers,
                     **{key: numbers[key] for key in ("effective_rank", "entropy_rank", "num_codes", "latent_dim")}})
    dimensions = {intrinsic_dimension(run.config) for run in runs}
    # The dashed line only means something when every run shares the data set's dimension.
    line = dimensions.pop() if len(dimensions) == 1 else None
    results.figures[COMPARE_FILE] = plots.spectrum_figure(
        spectra, intrinsic_dim=line, threshold=RANK_THRESHOLD, title="Singular values of the eval codes")
    results.entries["spectrum_compare"] = {"runs": rows, "figure": COMPARE_FILE, "threshold": RANK_THRESHOLD,
                                           "intrinsic_dimension": line}


# ------------------------------------------------------------------- writing


def read_results(path):
    """The existing evaluation.json as a dict ({} if none); UsageError if unreadable."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {path} to merge into it ({error}); move it away.") from None
    if not isinstance(document, dict):
        raise UsageError(f"{path} is not an evaluation document (a JSON object); move it away.")
    return document


def merged_document(previous, run, entries, model_sha256):
    """The previous results with this call's entries replacing theirs.

    Results of another model.keras (a retrained run) are dropped, not mixed in.
    """
    keep = previous if previous.get("model_sha256") == model_sha256 else {}
    document = {key: value for key, value in keep.items() if key in TASKS + ("spectrum_compare",)}
    document.update(entries)
    config = run.config
    document["run"] = {"run_dir": os.path.abspath(run.run_dir), "run_name": config.run_name,
                       "dataset": config.dataset, "model": config.model,
                       "linear_layers": config.linear_layers, "latent_dim": config.latent_dim}
    document["model_sha256"] = model_sha256
    document["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return document


def summary_lines(entries):
    """One human line per task."""
    lines = []
    if "spectrum" in entries:
        s = entries["spectrum"]
        lines.append(f"spectrum: effective rank {s['effective_rank']} of {s['latent_dim']} "
                     f"(entropy rank {s['entropy_rank']:.2f}) on {s['num_codes']} eval codes")
    if "reconstruction" in entries:
        r = entries["reconstruction"]
        lines.append(f"reconstruction: MSE {r['mse']:.5f} on {r['num_images']} eval images")
    if "gmm" in entries:
        lines.append(f"gmm: converged in {entries['gmm']['em_iterations']} EM iterations")
    if "fid" in entries:
        f = entries["fid"]
        values = ", ".join(f"{name} {value:.3f}" for name, value in f["values"].items())
        lines.append(f"FID ({f['extractor']['name']}, N={f['num_images']}, seed {f['seed']}): {values}")
    if "spectrum_compare" in entries:
        ranks = ", ".join(f"{row['run_name']} {row['effective_rank']}"
                          for row in entries["spectrum_compare"]["runs"])
        lines.append(f"compared effective ranks: {ranks}")
    return lines


# ----------------------------------------------------------------------- main


def evaluate(settings):
    """Runs the tasks of `settings`, writes their files and the merged evaluation.json,
    holding the lock of the run and of each compared run meanwhile.

    Returns:
        `(document, results)`: the evaluation.json written and this call's `Results`.
    """
    with locked_runs([settings.run_dir, *settings.compare]):
        return _evaluate(settings)


def _evaluate(settings):
    previous = read_results(os.path.join(settings.out, RESULTS_FILE))
    run = load_evaluated_run(settings.run_dir, settings.eval_size, settings.tasks)
    compared = [load_evaluated_run(other, settings.eval_size) for other in settings.compare]
    # The extractor first: missing Inception weights fail before any computing.
    extractor = build_extractor(run, settings) if "fid" in settings.tasks else None
    samplers = SamplerCache(run, settings)
    results = Results()
    tasks = {
        "spectrum": lambda: spectrum_task(run, settings, results),
        "reconstruction": lambda: reconstruction_task(run, settings, results),
        "interpolation": lambda: interpolation_task(run, settings, results),
        "mvg": lambda: mvg_task(run, settings, results, samplers),
        "gmm": lambda: gmm_task(run, settings, results, samplers),
        "pca": lambda: pca_task(run, settings, results, samplers),
        "fid": lambda: fid_task(run, settings, results, samplers, extractor),
    }
    for task in settings.tasks:
        tasks[task]()
    if compared:
        compare_spectra([run] + compared, results)
    model_sha256 = sha256_file(RunDir(settings.run_dir).model_path)
    if previous and previous.get("model_sha256") != model_sha256:
        print(f"note: {settings.run_dir}/model.keras changed since the last evaluation; "
              "its results are dropped from evaluation.json")
    document = merged_document(previous, run, results.entries, model_sha256)
    results.write(settings.out, document)
    for line in summary_lines(results.entries):
        print(line)
    print(f"wrote {', '.join(results.file_names() + [RESULTS_FILE])} to {settings.out}")
    return document, results
