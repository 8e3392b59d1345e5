import json
import pathlib
import re

import pytest

from training.config import RunConfig
from export.errors import UsageError
from training.fit import build_parser
from training.fit import parse_args
from training.rundir import RunDir


class TestDefaults:
    @pytest.mark.parametrize(
        "dataset, architecture, n, l",
        [
            ("shapes", "shapes", 32, 2),
            ("mnist", "mnist", 128, 8),
            ("digits", "mnist", 128, 8),
            ("celeb_a", "celeb_a", 512, 4),
        ],
    )
    def test_paper_defaults_per_dataset(self, dataset, architecture, n, l):
        config, _ = parse_args(["--dataset", dataset])
        assert (config.architecture, config.latent_dim, config.linear_layers) == (architecture, n, l)
        assert (config.epochs, config.batch_size, config.lr, config.optimizer) == (100, 32, 1e-4, "adam")

    def test_no_arguments_trains_irmae_on_shapes(self):
        config, options = parse_args([])
        assert (config.dataset, config.model, config.linear_layers, config.latent_dim) == ("shapes", "irmae", 2, 32)
        assert config.run_name == "shapes-irmae-l2-n32-s0"
        assert options == {"overwrite": False, "quiet": False}

    def test_baselines_default_to_no_stack(self):
        for model in ("ae", "vae", "ae_l1", "ae_l2"):
            config, _ = parse_args(["--model", model])
            assert config.linear_layers == 0

    def test_flags_map_onto_the_config(self):
        config, options = parse_args(
            ["--dataset", "mnist", "-l", "4", "-n", "16", "--epochs", "3", "--batch-size", "64",
             "--lr", "0.001", "--optimizer", "sgd", "--init-scale", "0.5", "--tying", "transpose",
             "--seed", "7", "--strategy", "mirrored", "--mixed-precision", "--jit-compile",
             "--run-name", "x", "--output-dir", "out", "--no-export", "--steps-per-epoch", "5",
             "--overwrite", "--freeze-stack"]
        )
        assert (config.linear_layers, config.latent_dim, config.epochs, config.batch_size) == (4, 16, 3, 64)
        assert (config.lr, config.optimizer, config.init_scale, config.tying) == (0.001, "sgd", 0.5, "transpose")
        assert (config.seed, config.strategy, config.mixed_precision, config.jit_compile) == (7, "mirrored", True, True)
        assert (config.run_name, config.output_dir, config.export, config.steps_per_epoch) == ("x", "out", False, 5)
        assert config.freeze_stack and options["overwrite"]

    def test_help_shows_the_defaults(self, capsys):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args(["--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        for expected in ("default: shapes", "default: 32", "n=128", "l=8", "default: 0.0001", "TF_CONFIG", "--mixed-precision"):
            assert expected in text


class TestRoundTrip:
    def test_config_json_round_trip_and_repeat_with_config(self, tmp_path):
        config, _ = parse_args(["--dataset", "digits", "-n", "9", "--epochs", "2", "--run-name", "r"])
        path = pathlib.Path(RunDir(tmp_path).config_path)
        path.write_text(json.dumps(config.document()))
        document = json.loads(path.read_text())
        assert document["versions"]["tensorflow"] and document["versions"]["keras"]
        assert "git_commit" in document
        assert RunConfig.load(str(tmp_path)) == config
        repeated, _ = parse_args(["--config", str(path)])
        assert repeated == config
        changed, _ = parse_args(["--config", str(path), "--epochs", "5"])
        assert changed.epochs == 5 and changed.latent_dim == 9

    def test_config_with_another_dataset_takes_that_datasets_defaults(self, tmp_path):
        config, _ = parse_args(["--dataset", "shapes", "--run-name", "r"])
        (tmp_path / "config.json").write_text(json.dumps(config.document()))
        other, _ = parse_args(["--config", str(tmp_path / "config.json"), "--dataset", "mnist"])
        assert (other.architecture, other.latent_dim, other.linear_layers) == ("mnist", 128, 8)


class TestStepsPerExecution:
    def test_default_is_auto(self):
        config, _ = parse_args([])
        assert config.steps_per_execution == "auto"

    @pytest.mark.parametrize("text, value", [("auto", "auto"), ("1", 1), ("32", 32)])
    def test_flag_and_json_round_trip(self, tmp_path, text, value):
        config, _ = parse_args(["--steps-per-execution", text, "--run-name", "r"])
        assert config.steps_per_execution == value
        path = pathlib.Path(RunDir(tmp_path).config_path)
        path.write_text(json.dumps(config.document()))
        assert RunConfig.load(str(tmp_path)).steps_per_execution == value
        repeated, _ = parse_args(["--config", str(path)])
        assert repeated == config

    def test_a_config_written_before_the_setting_existed_loads_as_auto(self, tmp_path):
        values = RunConfig().to_dict()
        del values["steps_per_execution"]
        pathlib.Path(RunDir(tmp_path).config_path).write_text(json.dumps({"config": values}))
        assert RunConfig.load(str(tmp_path)).steps_per_execution == "auto"


class TestBadInput:
    @pytest.mark.parametrize(
        "argv, match",
        [
            (["--model", "vae", "-l", "4"], "--model vae has no linear layers"),
            (["--model", "irmae", "-l", "0"], "--model irmae needs -l/--linear-layers >= 1"),
            (["-l", "-1"], "--linear-layers must be an integer >= 0"),
            (["-n", "0"], "--latent-dim must be an integer >= 1"),
            (["--epochs", "0"], "--epochs must be an integer >= 1"),
            (["--batch-size", "0"], "--batch-size must be an integer >= 1"),
            (["--lr", "0"], "--lr must be a finite number > 0"),
            (["--lr", "inf"], "--lr must be a finite number > 0; got inf"),
            (["--init-scale", "inf"], "--init-scale must be a finite number > 0; got inf"),
            (["--init-scale", "nan"], "--init-scale must be a finite number > 0; got nan"),
            (["--penalty", "-1"], "--penalty must be a finite number >= 0"),
            (["--dataset", "folder"], "--dataset folder needs --data-dir"),
            (["--dataset", "shapes", "--architecture", "mnist"], "--architecture mnist does not fit --dataset shapes; use shapes"),
            (["--run-name", "a/b"], "--run-name must be a plain directory name"),
            (["--dataset", "cifar"], "argument --dataset: invalid choice: 'cifar'"),
            (["--epochs", "ten"], "argument --epochs: invalid int value: 'ten'"),
            (["--frobnicate"], "unrecognized arguments: --frobnicate"),
            (["--steps-per-execution", "0"], "--steps-per-execution must be auto or an integer >= 1; got 0"),
            (["--steps-per-execution", "many"], "argument --steps-per-execution: must be auto or an integer >= 1, not 'many'"),
        ],
    )
    def test_one_line_usage_error(self, argv, match):
        with pytest.raises(UsageError, match=match) as error:
            parse_args(argv)
        assert "\n" not in str(error.value)

    def test_missing_and_broken_config_files(self, tmp_path):
        with pytest.raises(UsageError, match="no run configuration at"):
            parse_args(["--config", str(tmp_path / "nope.json")])
        (tmp_path / "bad.json").write_text("{not json")
        with pytest.raises(UsageError, match="cannot read run configuration"):
            parse_args(["--config", str(tmp_path / "bad.json")])
        (tmp_path / "odd.json").write_text(json.dumps({"config": {"dataset": "shapes", "colour": 3}}))
        with pytest.raises(UsageError, match="unknown setting"):
            parse_args(["--config", str(tmp_path / "odd.json")])


class TestConfigFileTypes:
    @pytest.mark.parametrize("values, message", [
        ({"lr": "big"}, "setting 'lr' must be a number; got 'big'"),
        ({"data_dir": 123}, "setting 'data_dir' must be a string or null; got 123"),
        ({"epochs": 2.5}, "setting 'epochs' must be an integer; got 2.5"),
        ({"export": "yes"}, "setting 'export' must be true or false; got 'yes'"),
    ])
    def test_wrong_value_types_are_one_usage_error(self, tmp_path, values, message):
        path = tmp_path / "config.json"
        path.write_text(json.dumps({"config": values}))
        with pytest.raises(UsageError, match=re.escape(message)):
            RunConfig.load(str(path))

    def test_an_explicit_architecture_brings_its_own_sizes(self):
        config = RunConfig(dataset="folder", data_dir="x", architecture="shapes").resolved()
        assert (config.latent_dim, config.linear_layers) == (32, 2)
        config = RunConfig(dataset="folder", data_dir="x", architecture="shapes", latent_dim=8).resolved()
        assert (config.latent_dim, config.linear_layers) == (8, 2)
        assert RunConfig(dataset="folder", data_dir="x").resolved().latent_dim == 512


class TestCheckedUpFront:
    """Every setting is checked when the config is resolved: before TensorFlow works and
    before any file is touched."""

    @pytest.mark.parametrize("values, message", [
        ({"seed": -1}, "--seed must be an integer >= 0; got -1"),
        ({"seed": 2**32}, "--seed must be below 2**32"),
        ({"stack_initializer": "glorot_unifrom"}, "--stack-initializer 'glorot_unifrom' is not a Keras initializer"),
        ({"stack_initializer": "constant"}, "--stack-initializer 'constant' is not a Keras initializer usable by name"),
        ({"stack_activation": "relux"}, "--stack-activation 'relux' is not a Keras activation"),
        ({"run_name": "a\0b"}, "--run-name must be a plain directory name"),
        ({"run_name": ".hidden"}, "not hidden"),
        ({"run_name": "x" * 201}, "--run-name is 201 bytes long; use at most 200"),
        ({"output_dir": "out\0put"}, "--output-dir must be a path"),
        ({"output_dir": ""}, "--output-dir must be a path"),
        ({"dataset": "folder", "data_dir": "im\0ages"}, "--data-dir must be a path"),
    ])
    def test_one_line_before_any_work(self, values, message):
        with pytest.raises(UsageError, match=re.escape(message)) as error:
            RunConfig(**values).resolved()
        assert "\n" not in str(error.value)

    def test_a_good_initializer_and_activation_pass(self):
        config = RunConfig(stack_initializer="orthogonal", stack_activation="tanh").resolved()
        assert (config.stack_initializer, config.stack_activation) == ("orthogonal", "tanh")

    def test_seed_on_the_command_line(self):
        with pytest.raises(UsageError, match="--seed must be an integer >= 0; got -1"):
            parse_args(["--seed", "-1"])

    def test_a_config_file_that_is_not_text_or_not_a_file(self, tmp_path):
        import os

        from tests.helpers import within_seconds

        (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
        with pytest.raises(UsageError, match="cannot read run configuration .*binary.json"):
            RunConfig.load(str(tmp_path / "binary.json"))
        os.mkfifo(tmp_path / "pipe.json")
        with within_seconds(10), pytest.raises(UsageError, match="pipe.json is not a regular file"):
            RunConfig.load(str(tmp_path / "pipe.json"))


class TestFolderRunNames:
    """Another image folder is another run: its default name carries the folder's name and
    a hash of its real path (issue: a second folder rewrote the first run's record)."""

    def test_each_folder_gets_its_own_default_name(self, tmp_path):
        import os

        for name in ("myimages", "myimages2"):
            (tmp_path / name).mkdir()
        (tmp_path / "deeper").mkdir()
        (tmp_path / "deeper" / "myimages").mkdir()
        names = [RunConfig(dataset="folder", data_dir=str(path), architecture="shapes").resolved().run_name
                 for path in (tmp_path / "myimages", tmp_path / "myimages2", tmp_path / "deeper" / "myimages")]
        assert len(set(names)) == 3
        assert re.fullmatch(r"folder-myimages-[0-9a-f]{8}-irmae-l2-n32-s0", names[0])
        # An alias of the same folder (a link, a relative path) is the same run.
        os.symlink(tmp_path / "myimages", tmp_path / "alias")
        alias = RunConfig(dataset="folder", data_dir=str(tmp_path / "alias"), architecture="shapes").resolved()
        assert alias.run_name == names[0]

    def test_the_data_dir_is_recorded_absolute(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        config = RunConfig(dataset="folder", data_dir="pics", architecture="shapes").resolved()
        assert config.data_dir == str(tmp_path / "pics")
        assert config.resolved() == config  # resolving again changes nothing

    def test_an_odd_folder_name_makes_a_plain_run_name(self, tmp_path):
        config = RunConfig(dataset="folder", data_dir=str(tmp_path / "my pics\udcff (2)"),
                           architecture="shapes").resolved()
        assert re.fullmatch(r"folder-my_pics_2-[0-9a-f]{8}-irmae-l2-n32-s0", config.run_name)
