"""training/experiments/latent_size.py at the smoke budget."""

import pytest

from tests.helpers import row_labels

pytestmark = pytest.mark.slow


def test_latent_size(smoke_experiments):
    document = smoke_experiments.result("latent-size")
    assert row_labels(document) == ["AE n=4", "AE n=7", "AE n=8", "AE n=16", "AE n=32",
                                      "VAE n=4", "VAE n=7", "VAE n=16", "VAE n=32", "IRMAE n=32 l=2"]
    assert all("gmm" in row["fid"] for row in document["rows"])
