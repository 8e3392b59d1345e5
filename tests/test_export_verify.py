"""export/verify.py: the parity check's tolerance."""

import numpy as np
import pytest

from export import verify


def test_check_close_scales_the_tolerance_beyond_one():
    assert verify.check_close("x", [1.0 + 5e-5], [1.0], 1e-4) == pytest.approx(5e-5)
    assert verify.check_close("x", [50.0 + 2e-3], [50.0], 1e-4) == pytest.approx(2e-3, rel=1e-3)
    with pytest.raises(verify.ParityError, match="x: max abs diff 0.002 .* exceeds 0.0001"):
        verify.check_close("x", [0.5 + 2e-3], [0.5], 1e-4)
    with pytest.raises(verify.ParityError, match="max abs diff nan"):
        verify.check_close("x", [np.nan], [0.5], 1e-4)
    with pytest.raises(verify.ParityError, match="max abs diff inf"):
        verify.check_close("x", [[0.5]], [0.5], 1e-4)
