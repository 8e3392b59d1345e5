"""The benchmarks run and report in their documented shape (no timing is checked here)."""

import json
import os

import numpy as np
import pytest

from benchmarks import common
from benchmarks import run
from benchmarks import train_step


@pytest.fixture
def no_torch(monkeypatch):
    monkeypatch.setattr(common, "torch_available", lambda: False)


@pytest.mark.slow
@pytest.mark.usefixtures("graph_mode", "no_torch")
def test_train_step_quick_prints_one_json_object_and_skips_missing_torch(capsys):
    train_step.main(["--quick", "--seconds", "0"])
    report = json.loads(capsys.readouterr().out)
    entry = report["architectures"]["shapes"]
    assert entry["flops_per_sample"] == {"forward": 26_873_856, "train": 79_835_136}
    keras_graph = entry["batch_8"]["keras_graph"]
    assert keras_graph["samples_per_s"] > 0 and 0 < keras_graph["fraction_of_peak"]
    assert keras_graph["steps_per_execution"] == 16
    assert entry["batch_8"]["notes"]["torch"] == "skipped: torch not installed"
    assert report["target_met"] == "skipped: torch not installed"
    assert report["matmul_peak_gflop_per_s_at_start"] > 0
    assert entry["batch_8"]["matmul_peak_gflop_per_s"]["used"] >= report["matmul_peak_gflop_per_s_at_start"]


def test_the_targets_are_read_from_the_parts():
    train = {
        "architectures": {"shapes": {"batch_32": {"keras_graph": {"samples_per_s": 1000.0}}}},
        "keras_graph_vs_torch": {"shapes_batch_32": 1.3},
        "target_met": True,
    }
    pipeline = {"pipeline_images_per_s": {"shapes": {"32": {"first_epoch": 9000, "later_epochs": 40000}}}}
    assert run.train_targets(train)["met"] is True
    targets = run.pipeline_targets(train, pipeline)
    # The slower of the two epochs counts: 9 000 images/s is 9x, under the 10x target.
    assert targets["ratios"] == {"shapes_batch_32": 9.0} and targets["met"] is False


class TestMachineState:
    def test_busy_and_steal_are_shares_of_all_cpu_time_since_a_snapshot(self):
        since = {"user": 100, "nice": 0, "system": 0, "idle": 100, "iowait": 0, "irq": 0, "softirq": 0,
                 "steal": 0}
        until = dict(since, user=160, idle=120, steal=20)  # +100 ticks: 60 user, 20 idle, 20 steal
        assert common.busy_and_steal(since, until) == {"busy_percent": 80.0, "steal_percent": 20.0}
        assert common.busy_and_steal(None) is None

    def test_the_record_says_which_kernels_tensorflow_runs_and_why(self):
        machine = common.machine()
        onednn = machine["onednn"]
        # The tests run TensorFlow as irmae_keras sets it up (conftest imports it first):
        # oneDNN on an x86-64 Linux, unless the environment said otherwise.
        from irmae_keras import onednn as library

        assert onednn["TF_ENABLE_ONEDNN_OPTS"] == os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")
        assert onednn["tensorflow_uses_onednn"] is library.enabled()
        if library.prefer_onednn({}, modules={}):  # a platform where the library turns it on
            assert onednn["TF_ENABLE_ONEDNN_OPTS"] in ("0", "1")
            assert onednn["tensorflow_uses_onednn"] is (onednn["TF_ENABLE_ONEDNN_OPTS"] == "1")
        assert set(machine["isa_flags"]) <= set(common.ISA_FLAGS)
        assert machine["schedulable_cpus"] >= 1


class TestStates:
    """benchmarks.states: one train_step run per state, summarised and rendered."""

    @staticmethod
    def train_step_result(graph, user, torch):
        batch = {"keras_graph": {"samples_per_s": graph, "vs_torch": round(graph / torch, 3)},
                 "keras_user": {"samples_per_s": user, "vs_torch": round(user / torch, 3)},
                 "torch": {"samples_per_s": torch}, "notes": {}}
        return {"machine": {"cpu": "AMD EPYC", "cpu_cores": 2, "onednn": {
                    "tensorflow_uses_onednn": False, "ONEDNN_MAX_CPU_ISA": "AVX2"}},
                "matmul_peak_gflop_per_s_at_start": 150.0,
                "cpu_time_during_run": {"busy_percent": 99.0, "steal_percent": 0.5},
                "architectures": {"shapes": {"batch_32": batch}}}

    def test_a_state_keeps_its_machine_record_and_every_ratio(self):
        from benchmarks import states

        entry = states.summarise("avx2-eigen", {"shapes": self.train_step_result(400.0, 380.0, 1000.0),
                                                "mnist": {"error": "exit code 1"}})
        assert entry["environment"] == {"ONEDNN_MAX_CPU_ISA": "AVX2", "TF_ENABLE_ONEDNN_OPTS": "0"}
        assert entry["ratios"]["shapes_batch_32"] == {"graph_vs_torch": 0.4, "user_vs_torch": 0.38,
                                                      "user_vs_graph": 0.95}
        assert entry["ratios"]["mnist"] == "exit code 1"
        assert entry["matmul_peak_gflop_per_s"] == [150.0]

    def test_the_readme_section_shows_each_state_and_its_kernels(self):
        from benchmarks import readme
        from benchmarks import states

        report = {"command": "python -m benchmarks.states", "seconds": 60, "target_met": False,
                  "goal_met": True, "lowest_ratio": 9.9, "states": {
                      "avx2": states.summarise("avx2", {"shapes": self.train_step_result(400.0, 380.0, 1000.0)}),
                      "avx2-eigen": states.summarise("avx2-eigen", {"shapes": self.train_step_result(300.0, 300.0, 1000.0)})}}
        text = readme.render(report)
        assert "| `avx2-eigen` |" in text and "| Eigen | AVX2 | 99 % / 0.5 % |" in text
        assert "0.40× (400 / 1,000)" in text and "0.30× (300 / 1,000)" in text
        # The verdict comes from the figures, over the states with irmae-keras' defaults only
        # (not avx2-eigen's Eigen kernels), never from the stored fields.
        assert "(`avx2`): **not met** (lowest ratio 0.38×)" in text
        page = f"{readme.BEGIN}\nfigures\n{readme.END}\n{readme.STATES_BEGIN}\nold\n{readme.STATES_END}\n"
        updated = readme.update(page, text, readme.STATES_BEGIN, readme.STATES_END)
        assert "figures" in updated and "old" not in updated and "0.40×" in updated


class TestTorchReference:
    @pytest.mark.parametrize("architecture, shape", [
        ("shapes", (2, 3, 32, 32)), ("mnist", (2, 1, 32, 32)), ("celeb_a", (1, 3, 64, 64)),
    ])
    def test_the_same_layers_and_parameter_count_as_the_keras_model(self, architecture, shape):
        torch = pytest.importorskip("torch")
        import irmae_keras
        from benchmarks import torch_reference

        model = torch_reference.IRMAE(architecture)
        x = torch.rand(shape)
        assert model(x).shape == x.shape
        assert model.encode(x).shape == (shape[0], common.ARCHITECTURES[architecture]["latent_dim"])
        keras_model = irmae_keras.build_autoencoder(architecture)
        assert sum(p.numel() for p in model.parameters()) == keras_model.count_params()

    def test_a_train_step_lowers_the_loss(self):
        torch = pytest.importorskip("torch")
        from benchmarks import torch_reference

        torch.manual_seed(0)
        step = torch_reference.make_train_step(torch_reference.IRMAE("shapes"), lr=1e-3)
        batch = torch_reference.random_batches("shapes", 8, count=1)[0]
        losses = [float(step(batch)) for _ in range(5)]
        assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


class TestReadme:
    """benchmarks.readme renders the run's JSON into the README's figures section."""

    LATEST = "benchmarks/results/latest.json"

    def test_every_section_comes_from_the_json(self):
        from benchmarks import readme

        with open(self.LATEST, encoding="utf-8") as handle:
            report = json.load(handle)
        text = readme.render(report)
        graph = report["results"]["train_step"]["architectures"]["mnist"]["batch_32"]["keras_graph"]
        assert f"{graph['samples_per_s']:,.1f}" in text
        latency = report["results"]["inference"]["architectures"]["celeb_a"]["latency_ms_batch_1"]
        assert f"{latency['onnxruntime']:,.2f}" in text
        for heading in ("Train step", "Input pipelines", "Encoder latency", "Peak resident", "op-level"):
            assert heading in text
        # Train at batch 32 and 256, inference latency and throughput.
        assert text.count("| mnist (n=128, l=8) |") == 2 + 2

    def test_a_partial_run_renders_what_it_has(self):
        from benchmarks import readme

        text = readme.render({"results": {"data_pipeline": {"pipeline_images_per_s": {
            "shapes": {"32": {"first_epoch": 100, "later_epochs": 200}}}}}, "targets": {}})
        assert "| shapes | 32 | 100 | 200 | n/a |" in text and "Train step" not in text

    def test_update_replaces_only_between_the_markers_and_refuses_a_readme_without(self, tmp_path):
        from benchmarks import readme

        page = f"# Benchmarks\nhow to run\n{readme.BEGIN}\nold figures\n{readme.END}\nfooter\n"
        assert readme.update(page, "new") == (
            f"# Benchmarks\nhow to run\n{readme.BEGIN}\nnew\n{readme.END}\nfooter\n")
        target = tmp_path / "README.md"
        target.write_text("no markers here\n")
        assert readme.main([self.LATEST, "--readme", str(target)]) == 2
        assert target.read_text() == "no markers here\n"


@pytest.mark.slow
class TestReplay:
    def test_pytorch_placement_replays_the_official_code_and_keras_placement_does_not(self):
        pytest.importorskip("torch")
        from benchmarks import replay

        # One torch thread: beside the other test worker, torch's second thread spins while it
        # waits for a core (24.6 s against 10.0 s with one core busy, 7.3 s against 8.9 idle).
        result = replay.replay("irmae", steps=80, batch_size=16, window=10, eval_count=64, torch_threads=1)
        pytorch, keras_placement = result["placements"]["pytorch"], result["placements"]["keras"]
        assert pytorch["within_floor"], result
        assert not keras_placement["within_floor"], result
        # Keras' placement is far outside, not at the edge, of the floor.
        assert keras_placement["codes"] > 5 * replay.TOLERANCE * result["floor"]["codes"]

    def test_torch_trains_on_the_threads_asked_for_or_the_references(self):
        torch = pytest.importorskip("torch")
        from benchmarks import replay
        from benchmarks import torch_reference

        module = replay.torch_copy(replay.build_keras_model("irmae", seed=0))
        batches = replay.shapes_batches(2, 4)
        before = torch.get_num_threads()
        try:
            assert np.all(np.isfinite(replay.train_torch(module, batches, threads=1)))
            assert torch.get_num_threads() == 1
            replay.train_torch(module, batches)
            assert torch.get_num_threads() == torch_reference.THREADS
        finally:
            torch.set_num_threads(before)

    @pytest.mark.parametrize("value", ["0", "-2", "two"])
    def test_a_bad_torch_thread_count_is_one_line_and_exit_2(self, value, capsys):
        from benchmarks import replay

        with pytest.raises(SystemExit) as exit_info:
            replay.parse_args(["--torch-threads", value])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"python -m benchmarks.replay: error: argument --torch-threads: takes an integer >= 1 "
            f"(torch's intra-op threads), not {value!r}")
        assert replay.parse_args(["--torch-threads", "1"]).torch_threads == 1

    def test_copied_torch_model_computes_the_keras_model(self):
        torch = pytest.importorskip("torch")
        from benchmarks import replay

        model = replay.build_keras_model("irmae", seed=0)
        images = replay.eval_images(4)
        module = replay.torch_copy(model)
        with torch.no_grad():
            output = module(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
        np.testing.assert_allclose(output.transpose(0, 2, 3, 1), np.asarray(model(images)), atol=1e-5)
        np.testing.assert_allclose(replay.torch_codes(module, images), np.asarray(model.encoder(images)),
                                   rtol=1e-4, atol=1e-6)

    def test_prints_skip_without_torch(self, no_torch, capsys):
        from benchmarks import replay

        assert replay.main(["--steps", "2"]) == 0
        assert json.loads(capsys.readouterr().out) == {"replay": "skipped: torch not installed"}
