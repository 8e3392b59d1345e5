"""`python -m export.encode`, on small hand-built ONNX encoders (no TensorFlow needed) and on
the session's exported compact encoder."""

import errno
import json
import os
import resource
import signal
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx import helper
from onnx import numpy_helper
from PIL import Image

from export import encode
from export import encoding
from export.errors import UsageError
from tests.helpers import REPO
from tests.helpers import call_main
from tests.helpers import onnx_run
from tests.helpers import run_cli
from tests.helpers import run_python
HEIGHT, WIDTH, CODE = 6, 5, 3


def _weights(channels):
    return np.random.default_rng(channels).normal(
        size=(HEIGHT * WIDTH * channels, CODE)).astype("float32")


def _write_encoder(path, channels=3, value_range=(0.0, 1.0), metadata=True):
    """image (batch, 6, 5, C) → flatten → @ W → code (batch, 3), with export's metadata."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["image", "flat_shape"], ["flat"]),
         helper.make_node("MatMul", ["flat", "weights"], ["code"])],
        "tiny_encoder",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                       ["batch", HEIGHT, WIDTH, channels])],
        [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", CODE])],
        initializer=[
            numpy_helper.from_array(np.array([-1, HEIGHT * WIDTH * channels], "int64"),
                                    "flat_shape"),
            numpy_helper.from_array(_weights(channels), "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, {
            "layout": "NHWC", "image_size": json.dumps([HEIGHT, WIDTH, channels]),
            "value_range": json.dumps(list(value_range)), "latent_size": str(CODE)})
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return str(path)


def _expected(pixels, channels, value_range=(0.0, 1.0)):
    """Codes of uint8 images already at the model's size."""
    low, high = value_range
    x = low + pixels.astype("float32") / 255 * (high - low)
    return x.reshape(len(x), -1) @ _weights(channels)


def _save(path, pixels):
    Image.fromarray(pixels).save(path)
    return str(path)


def _encode(argv, capsys):
    return call_main(encode.main, argv, "export.encode", capsys)


@pytest.fixture
def rgb_encoder(tmp_path):
    return _write_encoder(tmp_path / "encoder.onnx", channels=3)


def test_encodes_images_in_order_and_lists_their_names(rgb_encoder, tmp_path, capsys):
    pixels = np.random.default_rng(1).integers(0, 256, (2, HEIGHT, WIDTH, 3), dtype="uint8")
    paths = [_save(tmp_path / "b.png", pixels[0]), _save(tmp_path / "a.png", pixels[1])]
    out = tmp_path / "codes.npy"
    code, stdout, stderr = _encode(["--onnx", rgb_encoder, *paths, "--out", str(out)], capsys)
    assert (code, stderr) == (0, "")
    codes = np.load(out)
    assert codes.dtype == np.float32 and codes.shape == (2, CODE)
    np.testing.assert_allclose(codes, _expected(pixels, 3), rtol=1e-5, atol=1e-5)
    assert json.loads((tmp_path / "codes.names.json").read_text()) == paths
    assert f"encoded 2 of 2 images to {out}" in stdout
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png", "codes.names.json", "codes.npy",
                                            "encoder.onnx"]


def test_resizes_and_converts_to_the_model_channels(tmp_path, capsys):
    gray_encoder = _write_encoder(tmp_path / "gray.onnx", channels=1)
    colour = (200, 100, 50)
    # A uniform image stays uniform when resized; RGB → L is ITU-R 601-2 luma.
    path = _save(tmp_path / "big.jpg", np.full((40, 30, 3), colour, "uint8"))
    path_png = _save(tmp_path / "rgba.png", np.full((7, 9, 4), (*colour, 255), "uint8"))
    out = tmp_path / "codes.npy"
    code, _, stderr = _encode(["--onnx", gray_encoder, path_png, path, "--out", str(out)],
                              capsys)
    assert (code, stderr) == (0, "")
    luma = round(colour[0] * 299 / 1000 + colour[1] * 587 / 1000 + colour[2] * 114 / 1000)
    expected = _expected(np.full((1, HEIGHT, WIDTH, 1), luma, "uint8"), 1)
    codes = np.load(out)
    np.testing.assert_allclose(codes[0], expected[0], rtol=1e-5, atol=1e-5)
    # JPEG is lossy: within a couple of grey levels.
    np.testing.assert_allclose(codes[1], expected[0], atol=3 / 255 * np.abs(_weights(1)).sum())


def test_grayscale_files_are_expanded_for_an_rgb_encoder(rgb_encoder, tmp_path, capsys):
    path = _save(tmp_path / "g.png", np.full((HEIGHT, WIDTH), 77, "uint8"))
    code, _, _ = _encode(["--onnx", rgb_encoder, path, "--out", str(tmp_path / "c.npy")],
                         capsys)
    assert code == 0
    np.testing.assert_allclose(
        np.load(tmp_path / "c.npy"), _expected(np.full((1, HEIGHT, WIDTH, 3), 77, "uint8"), 3),
        rtol=1e-5, atol=1e-5)


def test_the_value_range_comes_from_the_metadata(tmp_path, capsys):
    encoder = _write_encoder(tmp_path / "e.onnx", channels=3, value_range=(-1.0, 1.0))
    pixels = np.random.default_rng(2).integers(0, 256, (1, HEIGHT, WIDTH, 3), dtype="uint8")
    path = _save(tmp_path / "x.png", pixels[0])
    code, _, _ = _encode(["--onnx", encoder, path, "--out", str(tmp_path / "c.npy")], capsys)
    assert code == 0
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"),
                               _expected(pixels, 3, (-1.0, 1.0)), rtol=1e-5, atol=1e-5)


def test_unreadable_files_are_reported_and_skipped(rgb_encoder, tmp_path, capsys):
    good = _save(tmp_path / "good.png", np.zeros((HEIGHT, WIDTH, 3), "uint8"))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    (tmp_path / "folder.png").mkdir()
    missing = str(tmp_path / "missing.png")
    argv = ["--onnx", rgb_encoder, str(tmp_path / "bad.png"), good, missing,
            str(tmp_path / "folder.png"), "--out", str(tmp_path / "c.npy")]
    code, stdout, stderr = _encode(argv, capsys)
    assert code == 0
    assert stderr.splitlines() == [
        f"export.encode: skipped {tmp_path / 'bad.png'}: not an image file Pillow can read",
        f"export.encode: skipped {missing}: no such file",
        f"export.encode: skipped {tmp_path / 'folder.png'}: is a directory",
    ]
    assert np.load(tmp_path / "c.npy").shape == (1, CODE)
    assert json.loads((tmp_path / "c.names.json").read_text()) == [good]
    assert "encoded 1 of 4 images" in stdout


def test_nothing_readable_is_an_error_and_writes_nothing(rgb_encoder, tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    code, stdout, stderr = _encode(
        ["--onnx", rgb_encoder, str(tmp_path / "bad.png"), "--out", str(tmp_path / "c.npy")],
        capsys)
    assert code == 2 and stdout == ""
    assert stderr.splitlines()[-1] == (
        "export.encode: error: none of the 1 images could be read; nothing written.")
    assert sorted(os.listdir(tmp_path)) == ["bad.png", "encoder.onnx"]


def test_dir_mode_takes_image_files_sorted_by_name(rgb_encoder, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    pixels = np.random.default_rng(3).integers(0, 256, (2, HEIGHT, WIDTH, 3), dtype="uint8")
    _save(images / "2.png", pixels[1])
    _save(images / "1.PNG", pixels[0])
    _save(images / ".hidden.png", pixels[0])
    (images / "notes.txt").write_text("not an image")
    code, _, stderr = _encode(
        ["--onnx", rgb_encoder, "--dir", str(images), "--out", str(tmp_path / "c.npy")], capsys)
    assert (code, stderr) == (0, "")
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), _expected(pixels, 3),
                               rtol=1e-5, atol=1e-5)
    assert json.loads((tmp_path / "c.names.json").read_text()) == [
        str(images / "1.PNG"), str(images / "2.png")]


@pytest.mark.parametrize("setup, argv, message", [
    (None, ["--onnx", "{tmp}/none.onnx", "{tmp}/x.png"], "--onnx {tmp}/none.onnx does not exist."),
    ("garbage", ["--onnx", "{tmp}/garbage.onnx", "{tmp}/x.png"], "cannot load {tmp}/garbage.onnx"),
    ("bare", ["--onnx", "{tmp}/bare.onnx", "{tmp}/x.png"],
     "lacks the image_size / value_range / layout metadata"),
    ("encoder", ["--onnx", "{tmp}/e.onnx"], "nothing to encode: pass IMAGE files or --dir D."),
    ("encoder", ["--onnx", "{tmp}/e.onnx", "--dir", "{tmp}", "{tmp}/x.png"],
     "pass IMAGE files or --dir D, not both."),
    ("encoder", ["--onnx", "{tmp}/e.onnx", "--dir", "{tmp}/nowhere"],
     "--dir {tmp}/nowhere is not a directory."),
    ("encoder", ["--onnx", "{tmp}/e.onnx", "--batch-size", "0", "{tmp}/x.png"],
     "--batch-size and --threads must be integers >= 1."),
])
def test_usage_errors_are_one_line(setup, argv, message, tmp_path, capsys):
    if setup == "garbage":
        (tmp_path / "garbage.onnx").write_bytes(b"\x00garbage")
    elif setup == "bare":
        _write_encoder(tmp_path / "bare.onnx", metadata=False)
    elif setup == "encoder":
        _write_encoder(tmp_path / "e.onnx")
    before = sorted(os.listdir(tmp_path))
    argv = [a.format(tmp=tmp_path) for a in argv] + ["--out", str(tmp_path / "c.npy")]
    code, _, stderr = _encode(argv, capsys)
    assert code == 2
    assert len(stderr.splitlines()) == 1 and stderr.startswith("export.encode: error: ")
    assert message.format(tmp=tmp_path) in stderr
    assert sorted(os.listdir(tmp_path)) == before


def test_an_output_in_a_missing_directory_is_an_error(rgb_encoder, tmp_path, capsys):
    path = _save(tmp_path / "x.png", np.zeros((HEIGHT, WIDTH, 3), "uint8"))
    code, _, stderr = _encode(
        ["--onnx", rgb_encoder, path, "--out", str(tmp_path / "no" / "c.npy")], capsys)
    assert code == 2 and "directory" in stderr and "does not exist" in stderr


def test_runs_without_tensorflow(rgb_encoder, tmp_path):
    path = _save(tmp_path / "x.png", np.zeros((HEIGHT, WIDTH, 3), "uint8"))
    script = textwrap.dedent(f"""
        import runpy, sys
        sys.argv = ["export.encode", "--onnx", {rgb_encoder!r}, {path!r},
                    "--out", {str(tmp_path / "c.npy")!r}]
        try:
            runpy.run_module("export.encode", run_name="__main__", alter_sys=True)
        except SystemExit as exit:
            assert exit.code in (0, None), exit.code
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras",
                                                                      "tf2onnx", "irmae_keras"))
        assert not heavy, heavy
        assert "onnxruntime" in sys.modules and "PIL" in sys.modules
        print("tensorflow-free")
    """)
    result = run_python("-c", script, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "tensorflow-free" in result.stdout
    assert np.load(tmp_path / "c.npy").shape == (1, CODE)


def test_names_path():
    assert encoding.names_path("out/codes.npy") == "out/codes.names.json"
    assert encoding.names_path("codes") == "codes.names.json"


class TestNothingIsLost:
    def test_an_existing_out_file_is_kept_unless_overwrite(self, rgb_encoder, tmp_path, capsys):
        path = _save(tmp_path / "x.png", np.zeros((HEIGHT, WIDTH, 3), "uint8"))
        model = tmp_path / "model.keras"
        model.write_bytes(b"a trained model")
        code, _, stderr = _encode(["--onnx", rgb_encoder, path, "--out", str(model)], capsys)
        assert code == 2 and stderr.count("\n") == 1 and "must end in .npy" in stderr
        out = tmp_path / "codes.npy"
        out.write_bytes(b"earlier codes")
        code, _, stderr = _encode(["--onnx", rgb_encoder, path, "--out", str(out)], capsys)
        assert code == 2 and "already exists; pass --overwrite" in stderr
        assert out.read_bytes() == b"earlier codes" and model.read_bytes() == b"a trained model"
        code, _, _ = _encode(["--onnx", rgb_encoder, path, "--out", str(out), "--overwrite"], capsys)
        assert code == 0 and np.load(out).shape == (1, CODE)

    def test_an_out_that_is_a_link_is_refused_and_left_alone(self, rgb_encoder, tmp_path, capsys):
        path = _save(tmp_path / "x.png", np.zeros((HEIGHT, WIDTH, 3), "uint8"))
        (tmp_path / "precious.npy").write_bytes(b"keep")
        os.symlink(tmp_path / "precious.npy", tmp_path / "c.npy")
        code, _, stderr = _encode(["--onnx", rgb_encoder, path, "--out", str(tmp_path / "c.npy"), "--overwrite"],
                                  capsys)
        assert code == 2 and len(stderr.splitlines()) == 1 and "c.npy is a symbolic link" in stderr
        assert os.path.islink(tmp_path / "c.npy") and (tmp_path / "precious.npy").read_bytes() == b"keep"

    def test_an_onnx_directory_is_named_as_one(self, tmp_path, capsys):
        path = _save(tmp_path / "x.png", np.zeros((HEIGHT, WIDTH, 3), "uint8"))
        code, _, stderr = _encode(["--onnx", str(tmp_path), path, "--out", str(tmp_path / "c.npy")], capsys)
        assert code == 2 and "is a directory; pass the encoder.onnx" in stderr

    def test_an_autoencoder_onnx_is_refused(self, tmp_path, capsys):
        graph = helper.make_graph(
            [helper.make_node("Identity", ["image"], ["reconstruction"])], "autoencoder",
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", HEIGHT, WIDTH, 3])],
            [helper.make_tensor_value_info("reconstruction", TensorProto.FLOAT, ["batch", HEIGHT, WIDTH, 3])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        helper.set_model_props(model, {"layout": "NHWC", "image_size": json.dumps([HEIGHT, WIDTH, 3]),
                                       "value_range": json.dumps([0.0, 1.0])})
        onnx.save(model, str(tmp_path / "autoencoder.onnx"))
        path = _save(tmp_path / "x.png", np.zeros((HEIGHT, WIDTH, 3), "uint8"))
        code, _, stderr = _encode(["--onnx", str(tmp_path / "autoencoder.onnx"), path,
                                   "--out", str(tmp_path / "c.npy")], capsys)
        assert code == 2 and "is not an image encoder" in stderr and not (tmp_path / "c.npy").exists()

    def test_dir_searches_sub_folders_as_training_does(self, rgb_encoder, tmp_path, capsys):
        root = tmp_path / "photos"
        (root / "a" / "b").mkdir(parents=True)
        (root / ".hidden").mkdir()
        for name in ("1.png", "a/2.png", "a/b/3.jpg", ".hidden/4.png"):
            _save(root / name, np.full((HEIGHT, WIDTH, 3), 9, "uint8"))
        code, _, _ = _encode(["--onnx", rgb_encoder, "--dir", str(root), "--out", str(tmp_path / "c.npy")],
                             capsys)
        names = json.loads((tmp_path / "c.names.json").read_text())
        assert code == 0 and [os.path.relpath(n, root) for n in names] == ["1.png", "a/2.png", "a/b/3.jpg"]

    def test_codes_are_streamed_one_batch_of_images_at_a_time(self, rgb_encoder, tmp_path, monkeypatch):
        rng = np.random.default_rng(1)
        paths = [_save(tmp_path / f"{i}.png", rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8))
                 for i in range(7)]
        session, spec = encoding.open_session(rgb_encoder)
        whole, _ = encoding.encode_files(session, paths, spec, report=None, batch_size=64)
        stacked = []
        real_stack = np.stack
        monkeypatch.setattr(encoding.np, "stack", lambda arrays: stacked.append(len(arrays)) or real_stack(arrays))
        streamed, names = encoding.encode_files(session, paths, spec, report=None, batch_size=3)
        assert stacked == [3, 3, 1] and names == paths
        np.testing.assert_allclose(streamed, whole, atol=1e-6)


def _pair(tmp_path, out):
    return (out.read_bytes(), (tmp_path / "codes.names.json").read_bytes())


def _hidden(folder):
    return sorted(entry for entry in os.listdir(folder) if entry.startswith("."))


class TestThePairIsReplacedAsOne:
    """codes.npy and codes.names.json: the old pair or the new one, never one of each."""

    @pytest.fixture
    def old_pair(self, rgb_encoder, tmp_path, capsys):
        first = _save(tmp_path / "first.png", np.zeros((HEIGHT, WIDTH, 3), "uint8"))
        out = tmp_path / "codes.npy"
        assert _encode(["--onnx", rgb_encoder, first, "--out", str(out)], capsys)[0] == 0
        images = [_save(tmp_path / f"new{i}.png", np.full((HEIGHT, WIDTH, 3), i, "uint8")) for i in range(3)]
        return out, images, _pair(tmp_path, out)

    @pytest.mark.parametrize("failing_write", [1, 2])
    def test_a_full_disk_while_writing_keeps_the_old_pair(self, failing_write, old_pair, rgb_encoder, tmp_path,
                                                         capsys, monkeypatch):
        out, images, before = old_pair
        real_write, calls = encoding.write_new_file, []

        def write_new_file(path, write):
            calls.append(path)
            if len(calls) == failing_write:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
            real_write(path, write)

        monkeypatch.setattr(encoding, "write_new_file", write_new_file)
        code, stdout, stderr = _encode(["--onnx", rgb_encoder, *images, "--out", str(out), "--overwrite"], capsys)
        assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1
        assert "no space left on the device" in stderr
        assert _pair(tmp_path, out) == before and _hidden(tmp_path) == []
        codes, names = encoding.load_codes(str(out))
        assert codes.shape == (1, CODE) and names == [str(tmp_path / "first.png")]

    def test_an_interruption_between_the_renames_reads_and_repairs_as_the_new_pair(self, old_pair, rgb_encoder,
                                                                                  tmp_path, capsys, monkeypatch):
        out, images, before = old_pair
        session, spec = encoding.open_session(rgb_encoder)
        codes, names = encoding.encode_files(session, images, spec, report=None)
        real_replace, calls = os.replace, []

        def replace(source, destination):
            calls.append(destination)
            if len(calls) == 3:  # staging → ready, codes moved in, then the names: stopped
                raise KeyboardInterrupt
            real_replace(source, destination)

        monkeypatch.setattr(encoding.os, "replace", replace)
        with pytest.raises(KeyboardInterrupt):
            encoding.save_codes(str(out), codes, names)
        monkeypatch.setattr(encoding.os, "replace", real_replace)
        assert (tmp_path / "codes.names.json").read_bytes() == before[1]  # one of each on disk ...
        read_codes, read_names = encoding.load_codes(str(out))  # ... but a reader gets the new pair
        np.testing.assert_array_equal(read_codes, codes)
        assert read_names == names and len(_hidden(tmp_path)) == 1
        encoding.repair_codes(str(out))
        assert _hidden(tmp_path) == [] and json.loads((tmp_path / "codes.names.json").read_text()) == names
        np.testing.assert_array_equal(np.load(out), codes)

    def test_the_next_run_repairs_what_an_interrupted_one_left(self, old_pair, rgb_encoder, tmp_path, capsys):
        out, images, _ = old_pair
        staging = tmp_path / f".codes.npy{encoding.PAIR_STAGING_INFIX}x"
        staging.mkdir()
        (staging / "codes.npy").write_bytes(b"half")
        code, _, _ = _encode(["--onnx", rgb_encoder, *images, "--out", str(out), "--overwrite"], capsys)
        assert code == 0 and _hidden(tmp_path) == []
        assert encoding.load_codes(str(out))[1] == images

    def test_a_pair_that_does_not_match_is_refused_by_the_reader(self, old_pair, tmp_path):
        out, _, _ = old_pair
        (tmp_path / "codes.names.json").write_text(json.dumps(["a", "b"]))
        with pytest.raises(UsageError, match="do not pair up: 1 codes, 2 names"):
            encoding.load_codes(str(out))

    @pytest.mark.slow
    def test_a_file_size_limit_keeps_the_old_pair(self, old_pair, rgb_encoder, tmp_path):
        out, _, before = old_pair
        many = [_save(tmp_path / f"image_with_a_long_name_{i:03d}.png", np.zeros((HEIGHT, WIDTH, 3), "uint8"))
                for i in range(200)]
        # The new codes.npy (~2.5 kB) fits under the limit, its names (~20 kB) do not.
        limit = 8192

        def limited():
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        result = run_cli("export.encode", "--onnx", rgb_encoder, *many, "--out", out, "--overwrite",
                         timeout=120, preexec_fn=limited, env={"PYTHONDONTWRITEBYTECODE": "1"})
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert result.stderr.splitlines() == [result.stderr.strip()] and "file-size limit" in result.stderr
        assert _pair(tmp_path, out) == before and _hidden(tmp_path) == []


class TestSpecialFilesAndNames:
    @pytest.fixture(autouse=True)
    def no_hang(self):
        """A read that blocks (a FIFO opened for reading) fails the test instead of hanging it."""
        def timeout(signum, frame):
            raise TimeoutError("export.encode blocked on a file")

        previous = signal.signal(signal.SIGALRM, timeout)
        signal.alarm(60)
        yield
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)

    def test_a_fifo_in_dir_is_skipped_by_name_without_hanging(self, rgb_encoder, tmp_path, capsys):
        images = tmp_path / "images"
        images.mkdir()
        pixels = np.full((HEIGHT, WIDTH, 3), 40, "uint8")
        good = _save(images / "a.png", pixels)
        os.mkfifo(images / "b.png")
        code, stdout, stderr = _encode(
            ["--onnx", rgb_encoder, "--dir", str(images), "--out", str(tmp_path / "c.npy")], capsys)
        assert code == 0 and "encoded 1 of 2 images" in stdout
        assert stderr.splitlines() == [
            f"export.encode: skipped {images / 'b.png'}: not a regular file (a FIFO, socket or device), not read"]
        assert json.loads((tmp_path / "c.names.json").read_text()) == [good]

    def test_a_fifo_as_the_only_image_is_one_line(self, rgb_encoder, tmp_path, capsys):
        os.mkfifo(tmp_path / "pipe.png")
        code, _, stderr = _encode(["--onnx", rgb_encoder, str(tmp_path / "pipe.png"), "--out",
                                   str(tmp_path / "c.npy")], capsys)
        assert code == 2 and stderr.splitlines()[-1] == (
            "export.encode: error: none of the 1 images could be read; nothing written.")

    def test_file_names_that_are_not_utf8_are_encoded_and_printed_escaped(self, rgb_encoder, tmp_path, capsys):
        images = tmp_path / "images"
        images.mkdir()
        pixels = np.random.default_rng(4).integers(0, 256, (1, HEIGHT, WIDTH, 3), dtype="uint8")
        Image.fromarray(pixels[0]).save(os.path.join(os.fsencode(images), b"caf\xe9.png"), format="PNG")
        with open(os.path.join(os.fsencode(images), b"d\xff.png"), "wb") as handle:
            handle.write(b"not an image")
        out = tmp_path / "c.npy"
        code, stdout, stderr = _encode(["--onnx", rgb_encoder, "--dir", str(images), "--out", str(out)], capsys)
        assert code == 0 and "encoded 1 of 2 images" in stdout
        assert stderr.splitlines() == [
            f"export.encode: skipped {images}/d\\xff.png: not an image file Pillow can read"]
        np.testing.assert_allclose(np.load(out), _expected(pixels, 3), rtol=1e-5, atol=1e-5)
        names = json.loads((tmp_path / "c.names.json").read_text())
        assert [os.fsencode(name) for name in names] == [os.path.join(os.fsencode(images), b"caf\xe9.png")]


@pytest.mark.slow
def test_the_deploy_distribution_encodes_in_a_venv_without_tensorflow(tmp_path):
    """deploy/ packages the TF-free path on its own: built into a wheel, installed in a
    plain venv (numpy, Pillow, onnxruntime from the package index), it encodes images
    as the repository does, and TensorFlow, Keras and the library are not installed."""
    import shutil
    import subprocess

    source = tmp_path / "source"  # a copy: building leaves build files beside the sources
    ignore = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    shutil.copytree(os.path.join(REPO, "deploy"), source / "deploy", ignore=ignore)
    shutil.copytree(os.path.join(REPO, "export"), source / "export", ignore=ignore)
    (source / "irmae_keras").mkdir()
    shutil.copy(os.path.join(REPO, "irmae_keras", "version.py"), source / "irmae_keras")
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*command):
        result = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                                timeout=600, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source / "deploy")
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", *wheels.iterdir())
    missing = run(python, "-I", "-c", "import importlib.util as u; print([m for m in ('tensorflow', 'keras', "
                                      "'irmae_keras', 'tf2onnx') if u.find_spec(m) is None])")
    assert missing.strip() == "['tensorflow', 'keras', 'irmae_keras', 'tf2onnx']"
    encoder = _write_encoder(tmp_path / "encoder.onnx")
    pixels = np.random.default_rng(5).integers(0, 256, (2, HEIGHT, WIDTH, 3), dtype="uint8")
    images = [_save(tmp_path / f"{i}.png", pixels[i]) for i in range(2)]
    out = run(python, "-I", "-m", "export.encode", "--onnx", encoder, *images, "--out", tmp_path / "codes.npy")
    assert "encoded 2 of 2 images" in out
    np.testing.assert_allclose(np.load(tmp_path / "codes.npy"), _expected(pixels, 3), rtol=1e-5, atol=1e-5)
    located = run(python, "-I", "-c", "import export.encode; print(export.encode.__file__)")
    assert located.startswith(str(venv))


@pytest.mark.slow
def test_encode_tool_on_the_exported_compact_encoder(tiny_export, shapes_eval_images, tiny_export_rank,
                                                     tmp_path, capsys):
    out, _, _ = tiny_export
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"shape{i}.png"))
        Image.fromarray(np.round(shapes_eval_images[i] * 255).astype("uint8")).save(paths[-1])
    onnx_path = os.path.join(out, f"encoder_rank{tiny_export_rank}.onnx")
    code, _, stderr = _encode(["--onnx", onnx_path, *paths, "--out", tmp_path / "c.npy"], capsys)
    assert code == 0, stderr
    codes = np.load(tmp_path / "c.npy")
    quantised = np.round(shapes_eval_images[:3] * 255).astype("float32") / 255
    np.testing.assert_allclose(codes, onnx_run(onnx_path, quantised), atol=1e-6)
    assert codes.shape == (3, tiny_export_rank)
    assert json.loads((tmp_path / "c.names.json").read_text()) == paths
