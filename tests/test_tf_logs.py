"""irmae_keras.tf_logs: TensorFlow's C++ start-up lines kept off a user's terminal."""

import os
import subprocess
import sys

import pytest

from irmae_keras import tf_logs


class TestQuietLevel:
    def test_no_gpu_hides_errors_too(self):
        assert tf_logs.quiet_level({}, gpu=False) == tf_logs.QUIET_LEVEL == "3"

    def test_a_gpu_keeps_cuda_errors(self):
        assert tf_logs.quiet_level({}, gpu=True) == tf_logs.GPU_LEVEL == "2"

    def test_the_users_own_level_is_kept(self):
        assert tf_logs.quiet_level({"TF_CPP_MIN_LOG_LEVEL": "0"}, gpu=False) is None

    def test_nvidia_devices_are_found_by_their_files(self, tmp_path):
        device = tmp_path / "nvidia0"
        assert not tf_logs.has_nvidia_device([str(device)])
        device.write_text("")
        assert tf_logs.has_nvidia_device([str(device)])


class TestImport:
    def test_nothing_happens_once_tensorflow_is_loaded(self):
        environ = {}
        assert not tf_logs.import_tensorflow_quietly(environ, modules={"tensorflow": object()})
        assert environ == {}

    def test_nothing_happens_when_the_user_asked_for_tensorflows_lines(self):
        environ = {"TF_CPP_MIN_LOG_LEVEL": "1"}
        assert not tf_logs.import_tensorflow_quietly(environ, modules={})
        assert environ == {"TF_CPP_MIN_LOG_LEVEL": "1"}


def test_native_writes_to_stderr_are_discarded_only_meanwhile(capfd):
    with tf_logs.native_stderr_silenced():
        os.write(2, b"from C++\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


@pytest.mark.slow
@pytest.mark.skipif(tf_logs.has_nvidia_device(), reason="a GPU machine keeps CUDA's errors")
def test_a_library_script_prints_only_its_own_lines():
    """What a user's script sees on a CPU-only machine: its own output, no TensorFlow lines
    (absl, oneDNN, CUDA probing, oneDNN's int32 fallback on CPUs without AVX-512)."""
    script = (
        "import numpy as np\n"
        "import irmae_keras\n"
        "model = irmae_keras.build_autoencoder('shapes', latent_dim=4)\n"
        "codes = model.encoder(np.zeros((2, 32, 32, 3), 'float32'))\n"
        "print(irmae_keras.effective_rank(np.random.default_rng(0).normal(size=(8, 4))))\n"
        "import tensorflow as tf\n"
        "print(int(tf.reduce_sum(tf.range(4, dtype=tf.int32))))\n"  # an int32 op
    )
    unset = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    for environment in (unset, dict(unset, TF_CPP_MIN_LOG_LEVEL="2")):  # a user's own quieter level too
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                env=environment, timeout=300, check=True)
        assert result.stdout.split() == ["4", "6"]
        assert result.stderr == "" or environment is not unset and "DT_INT32" in result.stderr
