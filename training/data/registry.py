"""The one table of datasets: name → `DataSource`, the record each source module declares.

Loading, `RunConfig` (and so `--dataset`), evaluation's defaults and `--help` read it. A new
dataset is one module that declares a `DataSource`, plus its line in `BUILT_IN` below; code
outside the package (a test, a notebook) can `register` one at run time.
"""

import types

from export.errors import DataError
from training.data import celeb_a
from training.data import digits
from training.data import folder
from training.data import shapes
from training.data import tfds
from training.data.common import DataSource


_SOURCES = {}


# Read-only and live: a dataset registered later is in it.
DATASETS = types.MappingProxyType(_SOURCES)


def register(source):
    """Adds a dataset to the table.

    Args:
        source: DataSource. Its `name` must not be registered yet.

    Returns:
        The source, so a module can write `SOURCE = register(DataSource(...))`.

    Raises:
        ValueError: not a DataSource, or its name is taken.
    """
    if not isinstance(source, DataSource):
        raise ValueError(f"register takes a DataSource, got {type(source).__name__}")
    if source.name in _SOURCES:
        raise ValueError(f"dataset {source.name!r} is registered already; pick another name")
    _SOURCES[source.name] = source
    return source


def unregister(name):
    """Removes a dataset registered with `register` (KeyError if there is none)."""
    del _SOURCES[name]


def get(name):
    """The `DataSource` of `name`; DataError naming the choices if there is none."""
    if name not in _SOURCES:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(_SOURCES)}")
    return _SOURCES[name]


def names():
    """tuple of str. The registered datasets, built-in ones first."""
    return tuple(_SOURCES)


def intrinsic_dimension(name):
    """The known intrinsic dimension of dataset `name` (7 for shapes); None if unknown or
    if `name` is not registered (a run of a dataset since removed)."""
    source = _SOURCES.get(name)
    return None if source is None else source.intrinsic_dimension


BUILT_IN = (shapes.SOURCE, digits.SOURCE, tfds.SOURCE, celeb_a.SOURCE, folder.SOURCE)


for _source in BUILT_IN:
    register(_source)
