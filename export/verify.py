"""Parity checks: an artifact must compute what the Keras model computes.

A difference is allowed up to `tolerance × max(1, max |reference|)`: the plain
absolute tolerance for images and codes within [-1, 1], relative beyond, since a
float32 sum of thousands of terms cannot match to 1e-5 at magnitude 50.
"""

import numpy as np

from export.errors import UsageError

FOLD_TOLERANCE = 1e-5
PARITY_TOLERANCE = 1e-4
PARITY_BATCHES = (1, 7)
# Eval images an export is checked on (its effective rank and compact models too).
EXPORT_EVAL_IMAGES = 1000


class ParityError(UsageError):
    """An artifact (or the folded model) does not reproduce the trained model."""


def max_abs_diff(got, want):
    """max |got - want| as a float (inf on a shape mismatch, nan if either has NaN)."""
    got, want = np.asarray(got, dtype="float64"), np.asarray(want, dtype="float64")
    if got.shape != want.shape:
        return float("inf")
    if got.size == 0:
        return 0.0
    return float(np.max(np.abs(got - want)))


def allowance(tolerance, want):
    """The max abs diff allowed against reference values `want`."""
    return tolerance * max(1.0, float(np.max(np.abs(want), initial=0.0)))


def check_close(what, got, want, tolerance):
    """The max abs diff of `got` vs `want`; ParityError if it exceeds the allowance."""
    diff = max_abs_diff(got, want)
    allowed = allowance(tolerance, want)
    if not diff <= allowed:  # also catches NaN
        raise ParityError(
            f"{what}: max abs diff {diff:.3g} vs the Keras model exceeds {allowed:.3g}; "
            "the export was not written."
        )
    return diff


def check_parity(what, run, reference, inputs, batches=PARITY_BATCHES, tolerance=None):
    """Runs `run` and `reference` on the first b inputs for each batch size b.

    Args:
        what: str. Names the artifact in an error.
        run: callable numpy batch → numpy (the artifact).
        reference: callable numpy batch → numpy (the Keras model).
        inputs: numpy array with at least `max(batches)` examples.
        batches: tuple of int. Batch sizes. Defaults to (1, 7).
        tolerance: float or None. None reads `PARITY_TOLERANCE`.

    Returns:
        dict batch size (str) → max abs diff.
    """
    tolerance = PARITY_TOLERANCE if tolerance is None else tolerance
    diffs = {}
    for batch in batches:
        try:
            output = run(inputs[:batch])
        except Exception as error:  # a broken artifact fails in its runtime's own way
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise ParityError(
                f"{what} could not be run at batch {batch}: {reason}; the export was not "
                "written.") from None
        diffs[str(batch)] = check_close(
            f"{what} at batch {batch}", output, reference(inputs[:batch]), tolerance)
    return diffs
