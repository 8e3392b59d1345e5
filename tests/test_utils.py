import os

import numpy as np
import pytest

from irmae_keras.utils import atomic_path
from irmae_keras.utils import check_images
from irmae_keras.utils import map_in_batches


def test_atomic_path_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        assert os.path.dirname(tmp) == str(target.parent)
        assert tmp.endswith(".txt") and not target.exists()
        with open(tmp, "w") as f:
            f.write("new")
    assert target.read_text() == "new"
    assert os.listdir(target.parent) == ["out.txt"]


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_check_images_accepts_unit_range_and_converts_to_float32():
    images = check_images("images", np.ones((2, 3, 3, 1), np.float64))
    assert images.dtype == np.float32 and images.shape == (2, 3, 3, 1)


@pytest.mark.parametrize(
    "images, minimum, match",
    [
        (np.zeros((3, 3, 1)), 1, r"`x` must be an array \(N >= 1, height, width, channels\); received shape \(3, 3, 1\)"),
        (np.zeros((1, 3, 3, 1)), 2, r"N >= 2"),
        (np.full((1, 3, 3, 1), 255.0), 1, r"`x` must be float images in \[0, 1\]; received values in \[255, 255\] \(divide uint8"),
    ],
)
def test_check_images_errors(images, minimum, match):
    with pytest.raises(ValueError, match=match):
        check_images("x", images, minimum)


def test_map_in_batches_covers_every_input_in_order():
    calls = []

    def double(batch):
        calls.append(len(batch))
        return batch * 2

    np.testing.assert_array_equal(map_in_batches(double, np.arange(7), 3), np.arange(7) * 2)
    assert calls == [3, 3, 1]


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from export.atomic import staged_directory
    from export.atomic import write_file_atomic
    from irmae_keras.utils import atomic_path
    from irmae_keras.utils import current_umask

    with atomic_path(tmp_path / "a.txt") as tmp:
        open(tmp, "w").write("x")
    write_file_atomic(str(tmp_path / "b.bin"), lambda handle: handle.write(b"y"))
    with staged_directory(str(tmp_path / "out")) as staging:
        open(os.path.join(staging, "c"), "w").write("z")
    mask = current_umask()
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o666 & ~mask
    assert stat.S_IMODE(os.stat(tmp_path / "b.bin").st_mode) == 0o666 & ~mask
    assert stat.S_IMODE(os.stat(tmp_path / "out").st_mode) == 0o777 & ~mask


def test_atomic_path_refuses_a_linked_destination_and_leaves_both_files(tmp_path):
    import errno

    (tmp_path / "outside.txt").write_text("precious")
    os.symlink(tmp_path / "outside.txt", tmp_path / "out.txt")
    with pytest.raises(OSError, match="out.txt is a symbolic link") as error:
        with atomic_path(tmp_path / "out.txt") as tmp:
            with open(tmp, "w") as handle:
                handle.write("new")
    assert error.value.errno == errno.ELOOP
    assert os.path.islink(tmp_path / "out.txt") and (tmp_path / "outside.txt").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["out.txt", "outside.txt"]
