"""How a run was made, in the words its reader needs: the optimizer steps it took (and
the paper's for the same data), the machine it ran on, and what a preset records of it.

`RunDir.save_preset` and `python -m training.pretrained --refresh` write a preset's
metadata through `preset_metadata`; the experiments' figures and report read the
steps and the machine from here too. It imports no run directory, so everyone can.
"""

import math
import os

HARDWARE_UNKNOWN = "unknown"


def training_steps(config):
    """Optimizer steps of a run: batches per epoch × epochs, from its settings.

    Returns:
        int, or None for a folder run whose train split cannot be counted (its
        folder is not on this machine).
    """
    from training import data

    if config.steps_per_epoch:
        return config.steps_per_epoch * config.epochs
    images = config.train_size or data.dataset_info(config.dataset, config.data_dir).sizes["train"]
    if images is None:
        return None
    return math.ceil(images / config.batch_size) * config.epochs


def paper_steps(config):
    """The steps of the paper's schedule on the same data: `RunConfig`'s defaults
    (100 epochs of the whole train split, batch 32)."""
    from training.config import RunConfig

    return training_steps(RunConfig(dataset=config.dataset, data_dir=config.data_dir))


def hardware_text(hw):
    """'AMD EPYC, 2 CPU cores, no GPU' (or the GPUs' names) from a hardware record."""
    if not hw:
        return "not recorded"
    gpus = f"GPUs {', '.join(hw['gpus'])}" if hw["gpus"] else "no GPU"
    return f"{hw['cpu']}, {hw['cores']} CPU cores, {gpus}"


def preset_settings(config):
    """The run's settings as a preset records them: without `output_dir` (a path of the
    machine that trained it), a folder's `data_dir` by its name only."""
    settings = config.to_dict()
    settings.pop("output_dir", None)
    if settings.get("data_dir") and os.path.isabs(settings["data_dir"]):
        settings["data_dir"] = os.path.basename(os.path.normpath(settings["data_dir"]))
    return settings


def preset_metadata(config, command, numbers, hardware, hardware_unknown_reason=None,
                    hardware_source=None):
    """What a preset records: its data, the command that trained it, its settings, the
    optimizer steps (and the paper's), the hardware, and `numbers` measured on its
    eval images (effective and entropy rank, eval MSE, eval images, colour kept).

    Args:
        config: `RunConfig` of the run, resolved.
        command: str. The command that trained the run.
        numbers: dict with `effective_rank`, `entropy_rank`, `eval_mse`,
            `eval_images`, `colour_kept` (a run's spectrum.json or
            `irmae_keras.pretrained.measure`).
        hardware: dict (a run's `config.json` "hardware") or None when not recorded.
        hardware_unknown_reason: str or None. Why the hardware is unknown; required
            when `hardware` is None, so that "unknown" is never unexplained.
        hardware_source: str or None. Where `hardware` was read, when not from the
            run itself (recorded as `hardware_source`).
    """
    metadata = {
        "dataset": config.dataset,
        "command": command,
        "settings": preset_settings(config),
        "optimizer": config.optimizer,
        "steps": training_steps(config),
        "paper_steps": paper_steps(config),
        **{key: numbers[key] for key in ("effective_rank", "entropy_rank", "eval_mse", "eval_images")},
        "colour_kept": numbers.get("colour_kept"),  # None for grey images
    }
    if hardware:
        metadata["hardware"] = hardware_text(hardware)
        if hardware_source:
            metadata["hardware_source"] = hardware_source
    else:
        if not hardware_unknown_reason:
            raise ValueError("hardware_unknown_reason is required when the hardware is not recorded")
        metadata["hardware"] = HARDWARE_UNKNOWN
        metadata["hardware_unknown_reason"] = hardware_unknown_reason
    return metadata
