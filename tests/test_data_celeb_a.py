"""Tests of training.data.celeb_a: the official files, their partitions and attributes."""

import numpy as np
import pytest

from export.errors import DataError
from tests.data_helpers import save_image
from training import data


def _celeb_a_image(seed):
    """A 218×178 aligned-CelebA-sized image: white inside the central 148 square, black out."""
    image = np.zeros((218, 178, 3), np.uint8)
    image[35:183, 15:163] = 255 if seed % 2 == 0 else 200
    return image


@pytest.fixture
def celeb_a_dir(tmp_path):
    """Six CelebA-style files (2 per partition) with a partition and an attribute file.

    The attribute header is written in reverse order, so labels must be matched by name.
    """
    root = tmp_path / "celeba"
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    for i, name in enumerate(names):
        save_image(root / "img_align_celeba" / name, _celeb_a_image(i), format="JPEG", quality=100)
    partition = "".join(f"{name} {i // 2}\n" for i, name in enumerate(names))
    (root / "list_eval_partition.txt").write_text(partition)
    header = list(reversed(data.CELEB_A_ATTRIBUTES))
    rows = [
        " ".join([name] + ["1" if (i + j) % 3 == 0 else "-1" for j in range(40)])
        for i, name in enumerate(names)
    ]
    (root / "list_attr_celeba.txt").write_text(
        "\n".join([str(len(names)), " ".join(header)] + rows) + "\n"
    )
    return root


class TestCelebAFolder:
    def test_splits_follow_the_partition_file_in_name_order(self, celeb_a_dir):
        for split, first in (("train", 0), ("eval", 2), ("test", 4)):
            images, labels = data.load_arrays("celeb_a", split, labels=True, data_dir=celeb_a_dir)
            assert images.shape == (2, 64, 64, 3)
            # Even-numbered files are white (255) inside the crop, odd ones grey (200).
            np.testing.assert_allclose(images[:, 32, 32, 0], [1.0, 200 / 255], atol=0.02)
            assert labels.shape == (2, 40) and labels.dtype == np.int32

    def test_crops_the_central_148_square(self, celeb_a_dir):
        images = data.load_arrays("celeb_a", "train", data_dir=celeb_a_dir)
        assert images[0].min() > 0.9  # the black border lies outside the crop

    def test_attributes_are_matched_by_name(self, celeb_a_dir):
        _, labels = data.load_arrays("celeb_a", "eval", labels=True, data_dir=celeb_a_dir)
        # File i has attribute column j (reversed header) set when (i + j) % 3 == 0.
        for row, i in enumerate((2, 3)):
            expected = [int((i + (39 - k)) % 3 == 0) for k in range(40)]
            np.testing.assert_array_equal(labels[row], expected)

    def test_missing_partition_file(self, celeb_a_dir):
        (celeb_a_dir / "list_eval_partition.txt").unlink()
        with pytest.raises(DataError, match="no list_eval_partition.txt"):
            data.load_dataset("celeb_a", data_dir=celeb_a_dir)

    def test_malformed_partition_line_names_file_and_line(self, celeb_a_dir):
        (celeb_a_dir / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg seven\n")
        with pytest.raises(DataError, match=r"list_eval_partition.txt:2: expected"):
            data.load_dataset("celeb_a", data_dir=celeb_a_dir)

    def test_labels_need_the_attribute_file(self, celeb_a_dir):
        (celeb_a_dir / "list_attr_celeba.txt").unlink()
        assert data.load_arrays("celeb_a", "eval", data_dir=celeb_a_dir).shape == (2, 64, 64, 3)
        with pytest.raises(DataError, match="labels=True needs list_attr_celeba.txt"):
            data.load_dataset("celeb_a", labels=True, data_dir=celeb_a_dir)

    def test_listed_but_missing_image_is_named(self, celeb_a_dir):
        (celeb_a_dir / "img_align_celeba" / "000003.jpg").unlink()
        with pytest.raises(DataError, match="000003.jpg"):
            data.load_dataset("celeb_a", "eval", data_dir=celeb_a_dir)
        dataset = data.load_dataset("celeb_a", "eval", data_dir=celeb_a_dir, skip_corrupt=True)
        assert sum(int(b.shape[0]) for b in dataset) == 1
        assert dataset.skipped_files.count == 1
