"""Downstream classification with few labels (paper Table 2) as functions.

The frozen encoder of a run, the official two-layer head, class-balanced labelled
subsets of the training split drawn per seed, a fixed validation split for early
stopping, test error on the eval split; optionally the same architecture trained
from scratch on the same subsets. `classify(Settings(...))` runs it; `python -m
training.classify` is its command line.
"""

import dataclasses
import hashlib
import os

from export.errors import UsageError

FEATURES = ("pre_stack", "post_stack")
DEFAULT_LABELS = "10,50,100,500,1000,all"
DEFAULT_FEATURES = "pre_stack"
DEFAULT_PATIENCE = 10
VALIDATION_FRACTION = 0.1
# The validation split is one for every seed: model selection compares like with like.
VALIDATION_SEED = 0
BATCH_SIZE = 100  # official
LEARNING_RATE = 1e-3  # official
DROPOUT = 0.5  # official
RESULTS_FILE = "results.json"
TABLE_FILE = "results.md"
METHODS = ("encoder", "supervised")


@dataclasses.dataclass
class Settings:
    """The checked command line."""

    run_dir: str
    labels: list  # ints ascending, then "all"
    seeds: int
    features: str
    epochs: int
    patience: int
    supervised: bool
    out: str


def parse_label_counts(text):
    """'10,50,all' → [10, 50, 'all'] (sorted, unique), or a UsageError."""
    counts = set()
    for item in (part.strip() for part in text.split(",")):
        if item == "all":
            counts.add(item)
            continue
        try:
            count = int(item)
        except ValueError:
            count = 0
        if count < 1:
            raise UsageError(
                f"--labels takes positive integers or 'all' separated by commas; got {item!r} in {text!r}."
            )
        counts.add(count)
    return sorted(c for c in counts if c != "all") + (["all"] if "all" in counts else [])


# ----------------------------------------------------------------- the splits


def validation_split(labels, fraction=VALIDATION_FRACTION, seed=VALIDATION_SEED):
    """A fixed class-stratified validation split of the training labels.

    Args:
        labels: int array (N,) of class indices.
        fraction: float. Share of each class held out (at least one image per
            class). Defaults to `0.1`.
        seed: int. Defaults to `0`.

    Returns:
        `(validation, pool)`: sorted index arrays, disjoint, together all of N.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    held_out = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held_out.append(members[: max(1, round(fraction * len(members)))])
    validation = np.sort(np.concatenate(held_out))
    return validation, np.setdiff1d(np.arange(len(labels)), validation)


def labelled_subset(labels, pool, count, seed, num_classes):
    """A class-balanced subset of `pool` with `count` images, drawn with `seed`.

    Each class gets `count // num_classes` images; the remainder goes to classes
    chosen by the seed. Within a class the seed fixes one order, so a seed's
    smaller subsets lie inside its larger ones.

    Args:
        labels: int array (N,) of class indices of the whole training split.
        pool: index array: the images that may be drawn (not the validation).
        count: int >= num_classes, or "all" (the whole pool).
        seed: int.
        num_classes: int.

    Returns:
        Sorted index array into `labels`.

    Raises:
        UsageError: a class has fewer pool images than its share.
    """
    import numpy as np

    if count == "all":
        return np.sort(pool)
    quota = np.full(num_classes, count // num_classes)
    quota[np.random.default_rng([seed, 0]).permutation(num_classes)[: count % num_classes]] += 1
    chosen = []
    for label in range(num_classes):
        members = pool[labels[pool] == label]
        if len(members) < quota[label]:
            raise UsageError(
                f"--labels {count}: class {label} has {len(members)} training images outside the "
                f"validation split, fewer than its balanced share of {quota[label]}; use a smaller count or 'all'."
            )
        order = np.random.default_rng([seed, 1, label]).permutation(len(members))
        chosen.append(members[order[: quota[label]]])
    return np.sort(np.concatenate(chosen))


# ------------------------------------------------------------------- models


def build_head(input_dim, width, num_classes):
    """The official head: [Dense width, ReLU, Dropout 0.5] × 2 → Dense(classes, no bias)."""
    import keras

    features = keras.Input((input_dim,), name="features")
    x = features
    for i in range(2):
        x = keras.layers.Dense(width, activation="relu", name=f"dense_{i}")(x)
        x = keras.layers.Dropout(DROPOUT, name=f"dropout_{i}")(x)
    logits = keras.layers.Dense(num_classes, use_bias=False, name="logits")(x)
    return keras.Model(features, logits, name="head")


def supervised_model(encoder_network, width, num_classes):
    """The encoder architecture with fresh weights, followed by the head."""
    import keras

    encoder = keras.models.clone_model(encoder_network)  # same layers, new initial weights
    images = keras.Input(encoder_network.input_shape[1:], name="image")
    logits = build_head(encoder.output_shape[-1], width, num_classes)(encoder(images))
    return keras.Model(images, logits, name="supervised")


def train_and_test(model, train, validation, test, settings):
    """Trains with early stopping on validation accuracy; scores the best epoch on test.

    `train`, `validation`, `test` are `(inputs, labels)` pairs.
    """
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    stopping = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", mode="max", patience=settings.patience, restore_best_weights=True)
    history = model.fit(
        *train, validation_data=validation, epochs=settings.epochs, batch_size=BATCH_SIZE,
        shuffle=True, callbacks=[stopping], verbose=0,
    ).history
    _, accuracy = model.evaluate(*test, batch_size=max(BATCH_SIZE, 1000), verbose=0)
    return {
        "test_accuracy": float(accuracy),
        "test_error": 1.0 - float(accuracy),
        "val_accuracy": float(history["val_accuracy"][stopping.best_epoch]),
        "best_epoch": int(stopping.best_epoch) + 1,
        "epochs_run": len(history["loss"]),
    }


# ---------------------------------------------------------------------- data


@dataclasses.dataclass
class Data:
    """Images, labels and frozen features of the train and test splits."""

    train_images: object
    train_labels: object
    train_features: object
    test_images: object
    test_labels: object
    test_features: object
    num_classes: int


def frozen_features(model, images, features):
    """Encoder outputs before (`pre_stack`) or after (`post_stack`) the linear stack."""
    from irmae_keras.utils import map_in_batches

    network = model.encoder_network if features == "pre_stack" else model.encoder
    return map_in_batches(lambda batch: network(batch, training=False), images, 500)


def number_of_classes(config, label_counts):
    """The classes of the run's dataset; UsageError if it has none or a count is too small."""
    from training import data

    info = data.dataset_info(config.dataset, config.data_dir)
    if info.label_kind != "class" or not info.num_classes:
        raise UsageError(
            f"classification needs a labelled dataset (digits, mnist, or a folder with one "
            f"sub-folder per class); the run {config.run_name} was trained on {config.dataset}, "
            f"whose labels are {info.label_kind if info.label_kind != 'class' else 'absent'}."
        )
    for count in label_counts:
        if count != "all" and count < info.num_classes:
            raise UsageError(
                f"--labels {count}: a class-balanced subset needs at least one image of each of "
                f"the {info.num_classes} classes."
            )
    return info.num_classes


def load_data(config, model, features, num_classes):
    """The run's train and test splits with labels, and their features (computed once)."""
    from training import data

    common = {"labels": True, "seed": config.seed, "data_dir": config.data_dir,
              "skip_corrupt": config.skip_corrupt, "image_shape": model.image_shape}
    train_images, train_labels = data.load_arrays(config.dataset, "train", **common)
    test_images, test_labels = data.load_arrays(config.dataset, "test", **common)
    return Data(
        train_images, train_labels, frozen_features(model, train_images, features),
        test_images, test_labels, frozen_features(model, test_images, features),
        num_classes,
    )


# -------------------------------------------------------------------- results


def _sha256_of_indices(indices):
    return hashlib.sha256(indices.astype("<i8").tobytes()).hexdigest()


def summarise(rows, labels, methods):
    """Mean and sample std of the test error over seeds, per method and label count."""
    import numpy as np

    summary = {}
    for method in methods:
        summary[method] = {}
        for count in labels:
            errors = [row["test_error"] for row in rows if row["method"] == method and row["labels"] == count]
            summary[method][str(count)] = {
                "mean_test_error": float(np.mean(errors)),
                "std_test_error": float(np.std(errors, ddof=1)) if len(errors) > 1 else None,
                "seeds": len(errors),
            }
    return summary


def markdown_table(document):
    """results.md: label count × method, test error in % as mean ± std over seeds."""
    methods = list(document["summary"])
    titles = {"encoder": f"frozen encoder ({document['features']}) + head", "supervised": "supervised from scratch"}
    lines = [
        f"Test error (%) on {document['test_images']} test images, mean ± std over "
        f"{document['seeds']} seeds; run `{document['run']['run_name']}` "
        f"({document['run']['model']}, l={document['run']['linear_layers']}, n={document['run']['latent_dim']}).",
        "",
        "| labels | " + " | ".join(titles[m] for m in methods) + " |",
        "|---:|" + "---:|" * len(methods),
    ]
    for count in document["labels"]:
        cells = []
        for method in methods:
            entry = document["summary"][method][str(count)]
            cell = f"{100 * entry['mean_test_error']:.2f}"
            if entry["std_test_error"] is not None:
                cell += f" ± {100 * entry['std_test_error']:.2f}"
            cells.append(cell)
        shown = f"all ({document['pool_images']})" if count == "all" else str(count)
        lines.append(f"| {shown} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(out, document):
    from irmae_keras.staging import atomic_path
    from irmae_keras.staging import write_json_atomic

    write_json_atomic(os.path.join(out, RESULTS_FILE), document)
    with atomic_path(os.path.join(out, TABLE_FILE)) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(markdown_table(document))


# ----------------------------------------------------------------------- main


def classify(settings):
    """Runs the experiment, holding the run's lock; returns the results.json document written."""
    from training.rundir import RunDir

    with RunDir(settings.run_dir).lock():
        return _classify(settings)


def _classify(settings):
    import keras
    import numpy as np

    from training.rundir import RunDir

    run = RunDir(settings.run_dir)
    num_classes = number_of_classes(run.check(), settings.labels)  # before the slow load
    config, model = run.load()
    data = load_data(config, model, settings.features, num_classes)
    validation, pool = validation_split(data.train_labels)
    for count in settings.labels:
        if count != "all" and count > len(pool):
            raise UsageError(
                f"--labels {count} exceeds the {len(pool)} training images outside the validation split."
            )
    subsets = {(seed, count): labelled_subset(data.train_labels, pool, count, seed, num_classes)
               for seed in range(settings.seeds) for count in settings.labels}
    methods = METHODS if settings.supervised else METHODS[:1]
    width = model.latent_dim
    rows = []
    for (seed, count), subset in subsets.items():
        for method in methods:
            keras.utils.set_random_seed(seed)
            if method == "encoder":
                network = build_head(data.train_features.shape[1], width, data.num_classes)
                source, test = data.train_features, data.test_features
            else:
                network = supervised_model(model.encoder_network, width, data.num_classes)
                source, test = data.train_images, data.test_images
            scores = train_and_test(
                network, (source[subset], data.train_labels[subset]),
                (source[validation], data.train_labels[validation]), (test, data.test_labels), settings)
            rows.append({
                "method": method, "labels": count, "seed": seed, **scores,
                "subset_size": int(len(subset)),
                "class_counts": np.bincount(data.train_labels[subset], minlength=data.num_classes).tolist(),
                "subset_sha256": _sha256_of_indices(subset),
            })
            print(f"{method:<10} labels {count!s:>5} seed {seed}: test error "
                  f"{100 * scores['test_error']:.2f} % (best epoch {scores['best_epoch']} of {scores['epochs_run']})")
    document = {
        "run": {"run_dir": os.path.abspath(settings.run_dir), "run_name": config.run_name,
                "dataset": config.dataset, "model": config.model,
                "linear_layers": config.linear_layers, "latent_dim": config.latent_dim},
        "features": settings.features,
        "feature_dim": int(data.train_features.shape[1]),
        "labels": settings.labels,
        "seeds": settings.seeds,
        "num_classes": data.num_classes,
        "train_images": int(len(data.train_labels)),
        "validation_images": int(len(validation)),
        "pool_images": int(len(pool)),
        "test_images": int(len(data.test_labels)),
        "protocol": {
            "validation": f"class-stratified {VALIDATION_FRACTION:.0%} of the train split, seed {VALIDATION_SEED}, the same for every seed",
            "subsets": "class-balanced, drawn per seed from the train split minus validation; nested across label counts",
            "selection": "best validation accuracy (early stopping, restored weights); test scored once",
            "head": f"[Dense {width}, ReLU, Dropout {DROPOUT}] x 2 -> Dense({data.num_classes}, no bias)",
            "optimizer": f"Adam {LEARNING_RATE}", "batch_size": BATCH_SIZE,
            "epochs": settings.epochs, "patience": settings.patience,
            "supervised": "the run's encoder architecture, fresh weights, trained with the head" if settings.supervised else None,
        },
        "results": rows,
        "summary": summarise(rows, settings.labels, methods),
    }
    write_outputs(settings.out, document)
    print(markdown_table(document), end="")
    print(f"wrote {RESULTS_FILE} and {TABLE_FILE} to {settings.out}")
    return document
