"""irmae_keras turns TensorFlow's oneDNN kernels on for every x86-64 CPU, unless told not to."""

import os
import subprocess
import sys

import pytest

from irmae_keras import onednn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TestPreferOneDNN:
    def test_sets_the_variable_when_unset_before_tensorflow_loads(self):
        environ = {}
        assert onednn.prefer_onednn(environ, "Linux", "x86_64", modules={})
        assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}

    @pytest.mark.parametrize("value", ["0", "1", "false"])
    def test_an_explicit_value_is_kept(self, value):
        environ = {"TF_ENABLE_ONEDNN_OPTS": value}
        assert not onednn.prefer_onednn(environ, "Linux", "x86_64", modules={})
        assert environ == {"TF_ENABLE_ONEDNN_OPTS": value}

    @pytest.mark.parametrize("system, machine", [("Darwin", "arm64"), ("Linux", "aarch64")])
    def test_other_platforms_are_left_to_tensorflow(self, system, machine):
        environ = {}
        assert not onednn.prefer_onednn(environ, system, machine, modules={})
        assert environ == {}

    def test_too_late_once_tensorflow_is_loaded(self):
        environ = {}
        assert not onednn.prefer_onednn(environ, "Linux", "x86_64", modules={"tensorflow": object()})
        assert environ == {}


class TestWarning:
    def test_warns_only_when_tensorflow_chose_eigen_by_its_own_default(self):
        text = onednn.message(False, loaded_first=True, environ={})
        assert "Import irmae_keras before tensorflow" in text and "TF_ENABLE_ONEDNN_OPTS=1" in text
        assert onednn.message(True, loaded_first=True, environ={}) is None
        assert onednn.message(False, loaded_first=False, environ={}) is None
        # The user chose Eigen: no warning.
        assert onednn.message(False, loaded_first=True, environ={"TF_ENABLE_ONEDNN_OPTS": "0"}) is None


class TestCpuFlags:
    def test_tensorflows_default_follows_the_vnni_bf16_and_amx_flags(self, tmp_path):
        zen3 = tmp_path / "zen3"
        zen3.write_text("processor\t: 0\nflags\t\t: fpu sse4_1 avx avx2 fma\n")
        zen4 = tmp_path / "zen4"
        zen4.write_text("flags\t\t: avx2 avx512f avx512_vnni avx512_bf16\n")
        assert onednn.cpu_flags(str(zen3)) == {"fpu", "sse4_1", "avx", "avx2", "fma"}
        assert not onednn.tensorflow_default(onednn.cpu_flags(str(zen3)))
        assert onednn.tensorflow_default(onednn.cpu_flags(str(zen4)))
        assert onednn.cpu_flags(str(tmp_path / "missing")) == set()


@pytest.mark.slow
class TestInAFreshProcess:
    """What a user's process gets: TensorFlow reads the variable once, when it starts."""

    SCRIPT = ("import os, {first}; from tensorflow.python.util import _pywrap_util_port as port; "
              "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), port.IsMklEnabled())")

    def run(self, first, **environment):
        env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        env.update(environment, TF_CPP_MIN_LOG_LEVEL="3")
        completed = subprocess.run([sys.executable, "-c", self.SCRIPT.format(first=first)], cwd=ROOT,
                                   env=env, capture_output=True, text=True, check=True)
        return completed.stdout.split()

    @pytest.mark.skipif(sys.platform != "linux" or os.uname().machine != "x86_64", reason="x86-64 Linux")
    def test_the_cli_package_and_the_library_turn_it_on_and_keep_an_explicit_off(self):
        # `training` is what every CLI imports first; it imports the library quietly.
        assert self.run("training") == ["1", "True"]
        assert self.run("irmae_keras", TF_ENABLE_ONEDNN_OPTS="0") == ["0", "False"]
