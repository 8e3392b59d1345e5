"""Tests of training.data.registry: the one table of datasets."""

import pytest

from export.errors import DataError
from training import data


class TestTable:
    def test_unknown_dataset(self):
        with pytest.raises(
            DataError, match="unknown dataset 'mnsit'; choose one of: shapes, digits"
        ):
            data.load_dataset("mnsit")
