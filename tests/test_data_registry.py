"""Tests of training.data.registry: the one table of datasets, and a new dataset as one record
that loading, dataset_info, RunConfig, --dataset and evaluation's defaults all pick up."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from export.errors import DataError
from export.errors import UsageError
from irmae_keras import paper
from training import data
from training.config import RunConfig
from training.data import registry
from training.data.common import DataSource
from training.data.common import class_labels
from training.data.common import two_way
from training.data.pipeline import in_memory_pipeline

# ---------------------------------------------------------------------------------------------
# A new dataset, written as its module would be: 12 train and 4 eval flat grey 8×8 images
# (image i has brightness i / 16), labelled "dark" / "light" alternately, read at 32×32×1.

TOY_SIZES = {"train": 12, "eval": 4}


def toy_arrays(split):
    first = 0 if split == "train" else TOY_SIZES["train"]
    index = np.arange(first, first + TOY_SIZES[two_way(split)])
    images = np.broadcast_to((index / 16)[:, None, None, None], (len(index), 8, 8, 1))
    return images.astype(np.float32), (index % 2).astype(np.int32)


def toy_dataset(split, size, options):
    images, labels = toy_arrays(split)
    images, labels = images[:size], labels[:size]
    return in_memory_pipeline(
        tf.data.Dataset.from_tensor_slices((images, labels)),
        len(images),
        lambda images, labels: (tf.image.resize(images, options.image_shape[:2]), labels),
        options,
    )


TOY = DataSource(
    name="toy",
    load=toy_dataset,
    sizes=TOY_SIZES,
    labels=class_labels(("dark", "light")),
    architecture="mnist",
    channels=(1,),
    fid_features="inception",
    intrinsic_dimension=1,
)


@pytest.fixture
def toy():
    registry.register(TOY)
    yield TOY
    registry.unregister(TOY.name)


# ---------------------------------------------------------------------------------------------


class TestANewDataset:
    def test_it_loads_like_a_built_in_one(self, toy):
        assert "toy" in data.DATASETS and registry.get("toy") is toy
        images, labels = data.load_arrays("toy", "eval", labels=True)
        assert images.shape == (4, 32, 32, 1) and images.dtype == np.float32
        np.testing.assert_allclose(images[:, 16, 16, 0], [12 / 16, 13 / 16, 14 / 16, 15 / 16])
        np.testing.assert_array_equal(labels, [0, 1, 0, 1])
        np.testing.assert_array_equal(data.load_arrays("toy", "test"), images)
        batches = data.load_dataset("toy", "train", 5, size=11)
        assert [int(batch.shape[0]) for batch in batches] == [5, 5, 1]

    def test_dataset_info_reads_its_record(self, toy):
        assert data.dataset_info("toy") == data.DatasetInfo(
            name="toy", image_shape=(32, 32, 1), architecture="mnist", splits=data.SPLITS,
            sizes={"train": 12, "eval": 4, "test": 4}, label_kind="class", label_shape=(),
            num_classes=2, label_names=("dark", "light"),
        )

    def test_its_image_shape_rules_come_from_the_record(self, toy):
        assert data.load_arrays("toy", image_shape=(16, 12, 1)).shape == (4, 16, 12, 1)
        with pytest.raises(DataError, match="not available for 'toy': it is grayscale"):
            data.load_dataset("toy", image_shape=(32, 32, 3))
        registry.register(dataclasses.replace(toy, name="toy_fixed", resizable=False))
        try:
            with pytest.raises(DataError, match="its images are defined on \\(32, 32, 1\\)"):
                data.load_dataset("toy_fixed", image_shape=(16, 16, 1))
        finally:
            registry.unregister("toy_fixed")

    def test_a_run_takes_its_defaults_and_its_eval_images(self, toy):
        config = RunConfig(dataset="toy").resolved()
        assert (config.architecture, config.latent_dim, config.linear_layers) == ("mnist", 128, 8)
        assert config.run_name.startswith("toy-irmae-l8-n128")
        np.testing.assert_array_equal(data.run_eval_images(config, 3), data.load_arrays("toy", limit=3))
        with pytest.raises(UsageError, match="--architecture shapes does not fit --dataset toy; use mnist"):
            RunConfig(dataset="toy", architecture="shapes").resolved()

    def test_the_command_line_offers_it(self, toy):
        from training.fit import build_parser
        from training.fit import parse_args

        assert parse_args(["--dataset", "toy"])[0].dataset == "toy"
        assert "toy      architecture mnist" in build_parser().epilog

    def test_evaluation_reads_its_defaults(self, toy):
        from training.evaluation import evaluation

        assert evaluation.default_features("toy") == "inception"
        assert evaluation.intrinsic_dimension(RunConfig(dataset="toy")) == 1

    def test_unregistered_it_is_gone_everywhere(self):
        registry.register(TOY)
        registry.unregister("toy")
        assert "toy" not in data.DATASETS and "toy" not in registry.names()
        with pytest.raises(DataError, match="unknown dataset 'toy'"):
            data.load_dataset("toy")
        with pytest.raises(UsageError, match="--dataset must be one of shapes, .*; got 'toy'"):
            RunConfig(dataset="toy").resolved()
        assert registry.intrinsic_dimension("toy") is None


class TestTable:
    def test_the_built_in_datasets_in_order(self):
        assert registry.names() == ("shapes", "digits", "mnist", "celeb_a", "folder")
        assert tuple(data.DATASETS) == registry.names()
        assert all(source.name == name for name, source in data.DATASETS.items())
        assert registry.BUILT_IN == tuple(data.DATASETS.values())

    def test_unknown_dataset(self):
        with pytest.raises(
            DataError, match="unknown dataset 'mnsit'; choose one of: shapes, digits"
        ):
            data.load_dataset("mnsit")

    def test_a_name_is_registered_once(self):
        with pytest.raises(ValueError, match="'shapes' is registered already"):
            registry.register(dataclasses.replace(data.DATASETS["shapes"]))
        with pytest.raises(ValueError, match="register takes a DataSource, got str"):
            registry.register("shapes")
        assert registry.get("shapes") is registry.BUILT_IN[0]

    def test_the_table_is_read_only(self):
        with pytest.raises(TypeError):
            data.DATASETS["toy"] = TOY

    def test_intrinsic_dimensions(self):
        assert registry.intrinsic_dimension("shapes") == paper.SHAPES_INTRINSIC_DIMENSION == 7
        assert registry.intrinsic_dimension("digits") is None
        assert registry.intrinsic_dimension("a dataset since removed") is None

    def test_the_built_in_records(self):
        sources = data.DATASETS
        assert {name for name, s in sources.items() if s.fid_features == "inception"} == {"celeb_a"}
        assert {name for name, s in sources.items() if s.needs_data_dir} == {"folder"}
        assert sources["folder"].fits == tuple(paper.IMAGE_SHAPES)
        assert all(s.fits == (s.architecture,) for name, s in sources.items() if name != "folder")


class TestRecord:
    def test_an_architecture_outside_its_fits_is_refused(self):
        with pytest.raises(ValueError, match="'toy': architecture 'mnist' must be one of its fits"):
            dataclasses.replace(TOY, fits=("shapes",))
        with pytest.raises(ValueError, match="architecture 'cifar'"):
            dataclasses.replace(TOY, architecture="cifar")

    def test_split_sizes_give_test_the_eval_size_unless_it_has_its_own(self):
        assert TOY.split_sizes() == {"train": 12, "eval": 4, "test": 4}
        three = dataclasses.replace(TOY, sizes={"train": 5, "eval": 2, "test": 3})
        assert three.split_sizes() == {"train": 5, "eval": 2, "test": 3}
        counted = dataclasses.replace(TOY, sizes=lambda data_dir: {"train": len(data_dir), "eval": 1})
        assert counted.split_sizes("abc") == {"train": 3, "eval": 1, "test": 1}

    def test_labels_may_depend_on_the_data(self):
        counted = dataclasses.replace(TOY, labels=lambda data_dir: class_labels(data_dir.split(",")))
        assert counted.label_description("a,b,c") == data.Labels("class", (), 3, ("a", "b", "c"))
        assert class_labels(None) == data.Labels("class", (), None, None)
