"""Generation quality per sampler."""

import os
import shutil

from training import data
from training.experiments.budgets import make_config
from training.experiments.budgets import Trial
from training.experiments.context import trial_row
from training.experiments.tables import fid_note
from training.experiments.tables import format_value
from training.experiments.tables import markdown_table


def run(ctx):
    """FID per sampler (reconstruction, interpolation, MVG, GMM, PCA) for AE, VAE, IRMAE."""
    budget = ctx.budget
    trials = []
    for dataset in ("shapes", "digits"):
        trials += [Trial("AE", make_config(budget, dataset, "ae"), group=dataset),
                   Trial("VAE", make_config(budget, dataset, "vae"), group=dataset),
                   Trial("IRMAE", make_config(budget, dataset, "irmae"), group=dataset)]
    rows = []
    figures = []
    for trial in trials:
        row = trial_row(ctx, trial, ("spectrum", "reconstruction", "fid", "gmm", "pca"))
        row["fid"]["pca"] = pca_fid(ctx, trial)
        rows.append(row)
        name = f"gmm-{trial.group}-{trial.label.lower()}.png"
        shutil.copyfile(os.path.join(ctx.run_dir(trial.config), "evaluation", "gmm.png"),
                        os.path.join(ctx.out_dir, name))
        figures.append((name, f"{trial.group}, {trial.label}: 100 GMM samples"))
    samplers = ("reconstruction", "interpolation", "mvg", "gmm", "pca", "train_images")
    table = markdown_table(
        ["dataset", "model", "effective rank"] + [f"FID {s}" for s in samplers],
        [[r["group"], r["label"], r["effective_rank"]] + [format_value(r["fid"][s], 3) for s in samplers]
         for r in rows],
    )
    notes = [fid_note(rows) + " `pca`: codes drawn from a Gaussian over the first 4 principal "
             "components (the subspace of the paper's PCA grid), the others at the mean. "
             "`train_images`: real training images, the floor a perfect generator reaches at this N."]
    return rows, table, figures, notes


def pca_fid(ctx, trial):
    """FID of codes sampled from a Gaussian over the codes' first 4 principal components."""
    from irmae_keras import analysis
    from irmae_keras import fid
    from irmae_keras import sampling
    from irmae_keras.sampling import encode
    from training.rundir import load_run

    config, model = load_run(ctx.run_dir(trial.config))
    images = data.run_eval_images(config, ctx.eval_size(config))
    codes = encode(model, images)
    mean, _, directions = analysis.code_pca(codes)
    basis = directions[:, :min(4, codes.shape[1])]
    projected = mean + (codes - mean) @ basis @ basis.T
    sampler = sampling.MultivariateGaussianSampler().fit(projected)
    generated = sampling.generate(model, sampler, n=len(codes), seed=0)
    extractor = fid.DomainFeatures.load(ctx.domain_features(config.dataset, model.image_shape))
    return fid.frechet_distance(*fid.feature_statistics(extractor(images)),
                                *fid.feature_statistics(extractor(generated)))
