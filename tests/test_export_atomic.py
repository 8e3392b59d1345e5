"""export/atomic.py: a staged directory is all or nothing; nothing is written through a link."""

import os

import pytest

from export import atomic
from export.errors import UsageError


def test_staged_directory_is_all_or_nothing(tmp_path):
    target = tmp_path / "target"
    with pytest.raises(RuntimeError):
        with atomic.staged_directory(target) as staging:
            (open(os.path.join(staging, "half.txt"), "w")).close()
            raise RuntimeError("fail midway")
    assert os.listdir(tmp_path) == []
    with atomic.staged_directory(target) as staging:
        open(os.path.join(staging, "a.txt"), "w").close()
    assert os.listdir(target) == ["a.txt"]
    with pytest.raises(UsageError, match="already exists"):
        with atomic.staged_directory(target):
            pass
    with pytest.raises(RuntimeError):
        with atomic.staged_directory(target, overwrite=True):
            raise RuntimeError("the new export failed")
    assert os.listdir(target) == ["a.txt"]
    with atomic.staged_directory(target, overwrite=True) as staging:
        open(os.path.join(staging, "b.txt"), "w").close()
    assert os.listdir(target) == ["b.txt"]
    assert sorted(os.listdir(tmp_path)) == ["target"]


def test_atomic_writers_never_write_through_a_link(tmp_path):
    (tmp_path / "outside").write_bytes(b"precious")
    os.symlink(tmp_path / "outside", tmp_path / "codes.npy")
    with pytest.raises(UsageError, match="codes.npy is a symbolic link"):
        atomic.write_file_atomic(str(tmp_path / "codes.npy"), lambda handle: handle.write(b"new"))
    os.makedirs(tmp_path / "real-export")
    os.symlink(tmp_path / "real-export", tmp_path / "export")
    with pytest.raises(UsageError, match="export is a symbolic link; refusing to replace it"):
        atomic.check_destination(str(tmp_path / "export"), overwrite=True)
    assert (tmp_path / "outside").read_bytes() == b"precious" and os.path.isdir(tmp_path / "real-export")
