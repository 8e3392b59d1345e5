"""Official PyTorch checkpoints in and out: irmae_keras/official.py and the Autoencoder methods.

With PyTorch installed, a transcription of the official `model.AE` (its module names, from the
layer lists of docs/paper.md) writes random checkpoints in both formats; without it, the
committed fixtures (tests/fixtures/official, written by make_fixtures.py there) test the reader.
"""

import gzip
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

import irmae_keras
from irmae_keras import official
from irmae_keras.paper import IMAGE_SHAPES

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "official")
TENSOR_FIXTURES = {"zip": "tensors_zip.pt", "legacy": "tensors_legacy.pt"}
TENSOR_VALUES = "tensors.npz"
# name → (architecture, n, l, vae, format, dtype): sparse random weights, gzipped.
MODEL_FIXTURES = {
    "shapes_irmae": ("shapes", 3, 2, False, "legacy", "float32"),
    "mnist_vae": ("mnist", 2, 0, True, "zip", "float16"),
}
MODEL_OUTPUTS = "expected_outputs.npz"
TOLERANCE = 1e-4  # relative difference to the official outputs
FORMATS = {"zip": {}, "legacy": {"_use_new_zipfile_serialization": False}}


# === The official model.AE in PyTorch ===

def official_ae(architecture, n, l=0, vae=False):
    """A PyTorch module with the official model.AE's attributes and module names:
    `enc.dcnn` (+ `enc.fc`), `dec.fc` (+) `dec.dcnn` with ReLUs at the odd Sequential
    indices, `mlp.hidden` (l bias-free n×n Linears, only for l > 0 and no VAE); the VAE's
    encoder emits [mu, logvar]. In eval mode."""
    import torch
    from torch import nn

    height, _, channels = IMAGE_SHAPES[architecture]
    code = 2 * n if vae else n

    def relus_between(layers, first=False):
        modules = [m for layer in layers for m in (nn.ReLU(), layer)]
        return modules if first else modules[1:]

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            widths = {"shapes": (channels, 32, 64, 128, 256), "mnist": (1, 32, 64, 128, 256),
                      "celeb_a": (3, 128, 256, 512, 1024)}[architecture]
            convs = [nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(widths, widths[1:])]
            if architecture == "shapes":
                self.dcnn = nn.Sequential(*relus_between(convs + [nn.Conv2d(256, code, 2)]))
            else:
                self.dcnn = nn.Sequential(*relus_between(convs), nn.ReLU())
                self.fc = nn.Linear(widths[-1] * (height // 16) ** 2, code)

        def forward(self, x):
            h = self.dcnn(x).reshape(len(x), -1)  # NCHW: a channel-major flatten
            return self.fc(h) if hasattr(self, "fc") else h

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            if architecture == "shapes":
                self.width = None
                self.dcnn = nn.Sequential(*relus_between(
                    [nn.ConvTranspose2d(n, 256, 2)]
                    + [nn.ConvTranspose2d(a, b, 4, 2, 1) for a, b in ((256, 128), (128, 64), (64, 32), (32, 3))]))
            elif architecture == "mnist":
                self.width = 128
                self.fc = nn.Linear(n, 8 * 8 * 128)
                self.dcnn = nn.Sequential(*relus_between(
                    [nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ConvTranspose2d(64, 32, 4, 2, 1),
                     nn.ConvTranspose2d(32, 1, 1)], first=True))
            else:
                self.width = 1024
                self.fc = nn.Linear(n, 8 * 8 * 1024)
                self.dcnn = nn.Sequential(*relus_between(
                    [nn.ConvTranspose2d(1024, 512, 4, 2, 1), nn.ConvTranspose2d(512, 256, 4, 2, 1),
                     nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.ConvTranspose2d(128, 3, 1)]))

        def forward(self, z):
            if self.width is None:
                x = z.view(len(z), n, 1, 1)
            else:
                x = self.fc(z).view(len(z), self.width, 8, 8)
            x = self.dcnn(x)
            return torch.sigmoid(x) if vae else torch.tanh(x)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.ModuleList(nn.Linear(n, n, bias=False) for _ in range(l))

        def forward(self, z):
            for layer in self.hidden:
                z = layer(z)
            return z

    class AE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = Encoder()
            self.dec = Decoder()
            if l > 0 and not vae:
                self.mlp = MLP()

        def encode(self, x):
            h = self.enc(x)
            if vae:
                return h[:, :n]
            return self.mlp(h) if l > 0 else h

        def forward(self, x):
            return self.dec(self.encode(x))

    return AE().eval()


def torch_outputs(module, images):
    """Encoder head, code and reconstruction of the PyTorch module on NHWC images."""
    import torch

    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        head, code = module.enc(x), module.encode(x)
        return {"head": head.numpy(), "code": code.numpy(),
                "reconstruction": module.dec(code).numpy().transpose(0, 2, 3, 1)}


def keras_outputs(model, images):
    return {"head": np.asarray(model.encoder_network(images, training=False)),
            "code": np.asarray(model.encoder(images, training=False)),
            "reconstruction": np.asarray(model(images, training=False))}


def relative_difference(actual, expected):
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def assert_same_outputs(actual, expected, tolerance=TOLERANCE):
    for key in ("head", "code", "reconstruction"):
        assert actual[key].shape == expected[key].shape, key
        assert relative_difference(actual[key], expected[key]) <= tolerance, key


def images_for(architecture, batch=3, seed=0):
    return np.random.default_rng(seed).uniform(size=(batch, *IMAGE_SHAPES[architecture])).astype(np.float32)


def load_torch(path):
    import torch

    return torch.load(path, weights_only=True)


# === Official checkpoints → Keras, and back (PyTorch writes and reads) ===

CASES = [  # (architecture, variant, n, l)
    ("shapes", "ae", 6, 0), ("shapes", "irmae", 6, 2), ("shapes", "irmae", 6, 4), ("shapes", "vae", 6, 0),
    ("mnist", "ae", 5, 0), ("mnist", "irmae", 5, 2), ("mnist", "irmae", 5, 3), ("mnist", "vae", 5, 0),
]


class TestOfficialCheckpoints:
    @pytest.mark.parametrize("file_format", FORMATS)
    @pytest.mark.parametrize("architecture,variant,n,l", CASES)
    def test_loads_with_the_official_outputs_and_goes_back_strictly(
            self, tmp_path, architecture, variant, n, l, file_format):
        torch = pytest.importorskip("torch")
        torch.manual_seed(1)
        module = official_ae(architecture, n, l, vae=variant == "vae")
        path = str(tmp_path / "official.pth")
        torch.save(module.state_dict(), path, **FORMATS[file_format])
        assert zipfile.is_zipfile(path) == (file_format == "zip")

        model = irmae_keras.Autoencoder.from_official_checkpoint(path)
        assert (model.architecture, model.variant, model.latent_dim, model.linear_layers) == (
            architecture, variant, n, l)
        images = images_for(architecture)
        expected = torch_outputs(module, images)
        assert_same_outputs(keras_outputs(model, images), expected)

        back = model.save_official_checkpoint(str(tmp_path / "back.pth"), file_format=file_format)
        assert zipfile.is_zipfile(back) == (file_format == "zip")
        fresh = official_ae(architecture, n, l, vae=variant == "vae")
        fresh.load_state_dict(load_torch(back), strict=True)
        for key, tensor in module.state_dict().items():
            assert torch.equal(fresh.state_dict()[key], tensor), key
        assert_same_outputs(torch_outputs(fresh, images), expected, tolerance=0.0)

    def test_celeb_a_in_the_legacy_format(self, tmp_path):
        torch = pytest.importorskip("torch")
        torch.manual_seed(2)
        module = official_ae("celeb_a", 4, 2)
        path = str(tmp_path / "celeba.pth")
        torch.save(module.state_dict(), path, _use_new_zipfile_serialization=False)
        model = irmae_keras.Autoencoder.from_official_checkpoint(path)
        assert (model.architecture, model.variant, model.latent_dim, model.linear_layers) == (
            "celeb_a", "irmae", 4, 2)
        images = images_for("celeb_a", batch=1)
        assert_same_outputs(keras_outputs(model, images), torch_outputs(module, images))
        fresh = official_ae("celeb_a", 4, 2)
        fresh.load_state_dict(load_torch(model.save_official_checkpoint(str(tmp_path / "back.pth"))),
                              strict=True)
        assert all(torch.equal(fresh.state_dict()[k], v) for k, v in module.state_dict().items())


class TestModelsGoBack:
    @pytest.mark.parametrize("options,expected_l", [
        (dict(variant="irmae", linear_layers=3, tying="transpose"), 3),
        (dict(variant="irmae", linear_layers=2, tying="shared"), 2),
        (dict(variant="ae_l2", linear_layers=2), 2),
        (dict(variant="vae"), 0),
    ])
    def test_a_keras_model_runs_the_same_in_the_official_module(self, tmp_path, options, expected_l):
        torch = pytest.importorskip("torch")
        model = irmae_keras.build_autoencoder("mnist", latent_dim=4, **options)
        path = model.save_official_checkpoint(str(tmp_path / "m.pth"))
        module = official_ae("mnist", 4, expected_l, vae=model.variant == "vae")
        module.load_state_dict(load_torch(path), strict=True)
        images = images_for("mnist")
        assert_same_outputs(keras_outputs(model, images), torch_outputs(module, images))
        assert torch.is_tensor(load_torch(path)["enc.fc.weight"])

    @pytest.mark.parametrize("absorb,expected_l", [(False, 1), (True, 0)])
    def test_a_folded_model_goes_back_with_its_folded_depth(self, tmp_path, absorb, expected_l):
        pytest.importorskip("torch")
        model = irmae_keras.build_autoencoder("shapes", latent_dim=4, linear_layers=3)
        folded = irmae_keras.fold_linear_stack(model, absorb=absorb)
        module = official_ae("shapes", 4, expected_l)
        module.load_state_dict(load_torch(folded.save_official_checkpoint(str(tmp_path / "f.pth"))),
                               strict=True)
        images = images_for("shapes")
        expected = keras_outputs(model, images)
        actual = torch_outputs(module, images)
        for key in ("code", "reconstruction"):
            assert relative_difference(actual[key], expected[key]) <= TOLERANCE


# === The reader and writer without a model ===

def fixture_tensors(torch):
    """Tensors that exercise the reader: dtypes, strides, storage offsets, a shared storage."""
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7
    shared = torch.arange(10, dtype=torch.float64) - 4.5
    return {
        "float32": base,
        "transposed": base.t(),  # the same storage, strides (1, 6)
        "offset": shared[3:8],  # storage offset 3
        "every_other": shared[1::2],  # stride 2
        "float16": torch.linspace(-2, 2, 5, dtype=torch.float16),
        "bfloat16": torch.tensor([1.5, -0.25, 3.0e5], dtype=torch.bfloat16),
        "int64": torch.tensor([-(2**40), 0, 7]),
        "boolean": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 3),
    }


def expected_array(tensor):
    import torch

    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


class TestReader:
    @pytest.mark.parametrize("file_format", TENSOR_FIXTURES)
    def test_the_committed_torch_files_read_without_torch(self, file_format):
        state = official.read_state_dict(os.path.join(FIXTURES, TENSOR_FIXTURES[file_format]))
        expected = np.load(os.path.join(FIXTURES, TENSOR_VALUES))
        assert list(state) == list(expected.files)
        for key in expected.files:
            assert state[key].dtype == expected[key].dtype, key
            np.testing.assert_array_equal(state[key], expected[key], err_msg=key)
        assert state["transposed"].flags.c_contiguous

    @pytest.mark.parametrize("file_format", FORMATS)
    def test_reads_what_torch_load_reads(self, tmp_path, file_format):
        torch = pytest.importorskip("torch")
        path = str(tmp_path / "t.pt")
        torch.save(fixture_tensors(torch), path, **FORMATS[file_format])
        state = official.read_state_dict(path)
        for key, tensor in load_torch(path).items():
            np.testing.assert_array_equal(state[key], expected_array(tensor), err_msg=key)

    def test_the_writer_round_trips_and_aligns_storages(self, tmp_path):
        state = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "d": np.array([1.5, -2.0]),
                 "h": np.array([0.5], dtype=np.float16), "i": np.array([2**40, -1]),
                 "b": np.array([True, False]), "s": np.array(2.0, dtype=np.float32),
                 "view": np.arange(20, dtype=np.float32).reshape(4, 5)[:, 1::2]}
        for file_format in official.FILE_FORMATS:
            path = official.write_state_dict(state, str(tmp_path / f"{file_format}.pt"), file_format)
            back = official.read_state_dict(path)
            assert list(back) == list(state)
            for key, value in state.items():
                assert back[key].dtype == value.dtype and np.array_equal(back[key], value), key
        zip_path = str(tmp_path / "zip.pt")
        with open(zip_path, "rb") as handle, zipfile.ZipFile(zip_path) as archive:
            for info in archive.infolist():
                if "/data/" in info.filename:
                    handle.seek(info.header_offset + 26)
                    name_length, extra_length = struct.unpack("<HH", handle.read(4))
                    start = info.header_offset + 30 + name_length + extra_length
                    assert start % official.STORAGE_ALIGNMENT == 0, info.filename

    @pytest.mark.parametrize("file_format", official.FILE_FORMATS)
    def test_torch_loads_what_the_writer_writes(self, tmp_path, file_format):
        pytest.importorskip("torch")
        state = {"f": np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3), "d": np.array([1e-300]),
                 "h": np.array([0.5, 2.0], dtype=np.float16), "i": np.array([2**40, -3]),
                 "b": np.array([True, False]), "u": np.array([255], dtype=np.uint8)}
        path = official.write_state_dict(state, str(tmp_path / "w.pt"), file_format)
        assert zipfile.is_zipfile(path) == (file_format == "zip")
        loaded = load_torch(path)
        assert list(loaded) == list(state)
        for key, value in state.items():
            assert np.array_equal(loaded[key].numpy(), value) and loaded[key].numpy().dtype == value.dtype

    def test_a_writer_refuses_what_torch_cannot_hold(self, tmp_path):
        with pytest.raises(ValueError, match="entry 'x'.*received str → <U1"):
            official.write_state_dict({"x": np.array(["a"])}, str(tmp_path / "w.pt"))
        assert not os.path.exists(tmp_path / "w.pt")


class TestCommittedModels:
    @pytest.mark.parametrize("name", MODEL_FIXTURES)
    def test_official_models_load_without_torch(self, tmp_path, name):
        architecture, n, l, vae, file_format, dtype = MODEL_FIXTURES[name]
        path = str(tmp_path / f"{name}.pth")
        with gzip.open(os.path.join(FIXTURES, f"{name}.pth.gz"), "rb") as source:
            data = source.read()
        with open(path, "wb") as target:
            target.write(data)
        assert zipfile.is_zipfile(path) == (file_format == "zip")
        assert official.read_state_dict(path)["enc.dcnn.0.weight"].dtype == dtype
        model = irmae_keras.Autoencoder.from_official_checkpoint(path)
        assert (model.latent_dim, model.linear_layers, model.variant) == (
            n, l, "vae" if vae else ("irmae" if l else "ae"))
        expected = np.load(os.path.join(FIXTURES, MODEL_OUTPUTS))
        images = expected[f"{name}/images"].astype(np.float32) / 255
        actual = keras_outputs(model, images)
        for key in ("head", "code", "reconstruction"):
            assert relative_difference(actual[key], expected[f"{name}/{key}"]) <= TOLERANCE, key


class TestWithoutTorch:
    @pytest.mark.parametrize("architecture,variant,l,file_format", [
        ("shapes", "irmae", 2, "zip"), ("mnist", "vae", 0, "legacy"), ("mnist", "ae", 0, "zip")])
    def test_a_keras_model_round_trips_through_the_official_format(
            self, tmp_path, architecture, variant, l, file_format):
        model = irmae_keras.build_autoencoder(architecture, variant, latent_dim=3, linear_layers=l)
        path = model.save_official_checkpoint(str(tmp_path / "m.pth"), file_format=file_format)
        assert set(official.read_state_dict(path)) == set(official.official_state_dict(model))
        back = irmae_keras.Autoencoder.from_official_checkpoint(path)
        assert (back.architecture, back.variant, back.linear_layers) == (architecture, variant, l)
        images = images_for(architecture, batch=2)
        assert_same_outputs(keras_outputs(back, images), keras_outputs(model, images), tolerance=0.0)

    def test_the_flatten_order_is_channel_major(self):
        # enc.fc reads PyTorch's (C, H, W) flatten: its column c·H·W + h·W + w is Keras' row (h·W + w)·C + c.
        model = irmae_keras.build_autoencoder("mnist", "ae", latent_dim=2)
        state = official.official_state_dict(model)
        kernel = np.asarray(model.encoder_network.layers[-1].kernel)  # (2·2·256, n)
        h, w, c = 1, 0, 5
        np.testing.assert_array_equal(state["enc.fc.weight"][:, c * 4 + h * 2 + w], kernel[(h * 2 + w) * 256 + c])

    def test_overrides_replace_what_is_inferred(self, tmp_path):
        model = irmae_keras.build_autoencoder("shapes", latent_dim=3, linear_layers=2)
        path = model.save_official_checkpoint(str(tmp_path / "m.pth"))
        back = irmae_keras.Autoencoder.from_official_checkpoint(path, variant="ae_l2", penalty=0.01, name="mine")
        assert (back.variant, back.penalty, back.name, back.linear_layers) == ("ae_l2", 0.01, "mine", 2)
        images = images_for("shapes", batch=2)
        np.testing.assert_array_equal(np.asarray(back.encoder(images)), np.asarray(model.encoder(images)))


# === What is refused ===

class Payload:
    """Pickles as a call of `function(argument)`: what a malicious checkpoint does."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


def malicious_pickles(marker):
    """Global as the file spells it → pickle (protocol 2, as torch: builtins is `__builtin__`)."""
    return {
        "posix.system": pickle.dumps({"enc.dcnn.0.weight": Payload(os.system, f"touch {marker}")}, protocol=2),
        "__builtin__.eval": pickle.dumps(Payload(eval, f"open({str(marker)!r}, 'w').close()"), protocol=2),
    }


def zip_with_pickle(path, data):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/version", b"3\n")


def legacy_with_pickle(path, data, in_header=False):
    with open(path, "wb") as handle:
        handle.write(data if in_header else pickle.dumps(official.LEGACY_MAGIC, protocol=2))
        if not in_header:
            handle.write(pickle.dumps(official.LEGACY_PROTOCOL, protocol=2))
            handle.write(pickle.dumps({"little_endian": True}, protocol=2))
            handle.write(data)


class TestRefused:
    def test_the_payload_is_live(self, tmp_path):
        # Plain pickle runs it: the refusal below is what keeps the marker away.
        marker = tmp_path / "marker"
        pickle.loads(malicious_pickles(marker)["__builtin__.eval"])
        assert marker.exists()

    @pytest.mark.parametrize("writer", ["zip", "legacy", "legacy_header"])
    @pytest.mark.parametrize("global_name", ["posix.system", "__builtin__.eval"])
    def test_a_malicious_pickle_is_refused_before_it_runs(self, tmp_path, writer, global_name):
        marker = tmp_path / "marker"
        data = malicious_pickles(marker)[global_name]
        path = str(tmp_path / "evil.pth")
        if writer == "zip":
            zip_with_pickle(path, data)
        else:
            legacy_with_pickle(path, data, in_header=writer == "legacy_header")
        refused = rf"refused: its pickle asks for {global_name}, .*nothing from it was run"
        with pytest.raises(ValueError, match=refused) as error:
            irmae_keras.Autoencoder.from_official_checkpoint(path)
        assert "\n" not in str(error.value)
        assert not marker.exists()

    def test_a_storage_type_cannot_be_called(self, tmp_path):
        # torch.FloatStorage resolves to a description, never to something that runs.
        zip_with_pickle(str(tmp_path / "s.pth"), b"\x80\x02ctorch\nFloatStorage\n(K\x03tR.")
        with pytest.raises(ValueError, match="not a readable torch.save state_dict"):
            official.read_state_dict(str(tmp_path / "s.pth"))

    @pytest.mark.parametrize("bad,message", [
        (b"(K\x04t(K\x02t", r"size \(4,\), stride \(2,\) at offset 0"),  # reads past the end
        (b"(Kdt(K\x00t", r"size \(100,\), stride \(0,\) at offset 0"),  # 100 elements out of 4
    ])
    def test_a_tensor_that_does_not_fit_its_storage_is_refused(self, tmp_path, bad, message):
        path = official.write_state_dict({"w": np.zeros(4, np.float32)}, str(tmp_path / "t.pth"))
        with zipfile.ZipFile(path) as archive:
            records = {info.filename: archive.read(info) for info in archive.infolist()}
        size_and_stride = b"(K\x04t(K\x01t"  # size (4,), stride (1,) as the writer pickles them
        assert size_and_stride in records["archive/data.pkl"]
        records["archive/data.pkl"] = records["archive/data.pkl"].replace(size_and_stride, bad)
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in records.items():
                archive.writestr(name, data)
        with pytest.raises(ValueError, match=message + " does not fit in its storage of 4 elements"):
            official.read_state_dict(path)

    @pytest.mark.parametrize("content,message", [
        (b"not a checkpoint", "not a readable torch.save state_dict"),
        (pickle.dumps([1, 2], protocol=2), "neither a zip archive nor a legacy torch.save stream"),
    ])
    def test_a_foreign_file_is_one_clear_error(self, tmp_path, content, message):
        (tmp_path / "x.pth").write_bytes(content)
        with pytest.raises(ValueError, match=message) as error:
            irmae_keras.Autoencoder.from_official_checkpoint(str(tmp_path / "x.pth"))
        assert "\n" not in str(error.value)

    def test_a_truncated_legacy_file_is_one_clear_error(self, tmp_path):
        with open(os.path.join(FIXTURES, TENSOR_FIXTURES["legacy"]), "rb") as handle:
            (tmp_path / "t.pth").write_bytes(handle.read()[:-3])
        with pytest.raises(ValueError, match="truncated"):
            official.read_state_dict(str(tmp_path / "t.pth"))

    def test_a_state_dict_inside_a_training_checkpoint_is_named(self, tmp_path):
        zip_with_pickle(str(tmp_path / "c.pth"), pickle.dumps({"epoch": 3}, protocol=2))
        with pytest.raises(ValueError, match="its entry 'epoch' is not a tensor"):
            official.read_state_dict(str(tmp_path / "c.pth"))

    def test_a_missing_file_is_one_clear_error(self, tmp_path):
        with pytest.raises(ValueError, match="cannot read it"):
            irmae_keras.Autoencoder.from_official_checkpoint(str(tmp_path / "none.pth"))


class TestMismatches:
    def _checkpoint(self, tmp_path, edit, **build):
        model = irmae_keras.build_autoencoder("shapes", **{"latent_dim": 3, **build})
        state = official.official_state_dict(model)
        edit(state)
        return official.write_state_dict(state, str(tmp_path / "c.pth"))

    def test_a_wrong_tensor_shape_is_named(self, tmp_path):
        def edit(state):
            state["dec.dcnn.4.weight"] = np.zeros((128, 64, 3, 3), np.float32)
        path = self._checkpoint(tmp_path, edit)
        with pytest.raises(ValueError, match=r"does not fit the official shapes irmae \(n=3, l=2\): wrong shape "
                                             r"dec.dcnn.4.weight \(128, 64, 3, 3\) \(expected \(128, 64, 4, 4\)\)"):
            irmae_keras.Autoencoder.from_official_checkpoint(path)

    def test_an_unknown_key_is_named(self, tmp_path):
        def edit(state):
            state["enc.extra.weight"] = np.zeros(3, np.float32)
        with pytest.raises(ValueError, match="fits no official IRMAE architecture .*closest is shapes, "
                                             "unexpected enc.extra.weight"):
            irmae_keras.Autoencoder.from_official_checkpoint(self._checkpoint(tmp_path, edit))

    def test_a_missing_stack_matrix_is_named(self, tmp_path):
        path = self._checkpoint(tmp_path, lambda state: state.pop("mlp.hidden.1.weight"), linear_layers=3)
        with pytest.raises(ValueError, match="missing mlp.hidden.1.weight"):
            irmae_keras.Autoencoder.from_official_checkpoint(path)

    def test_a_state_dict_of_another_model_fits_nothing(self, tmp_path):
        path = official.write_state_dict({"fc.weight": np.zeros((2, 2), np.float32)}, str(tmp_path / "c.pth"))
        with pytest.raises(ValueError, match="fits no official IRMAE architecture .*missing .*unexpected fc.weight"):
            irmae_keras.Autoencoder.from_official_checkpoint(path)

    def test_an_encoder_neither_n_nor_2n_wide_is_named(self, tmp_path):
        def edit(state):
            state["enc.dcnn.8.weight"] = np.zeros((5, 256, 2, 2), np.float32)
            state["enc.dcnn.8.bias"] = np.zeros(5, np.float32)
        with pytest.raises(ValueError, match=r"the encoder \(enc.dcnn.8.weight\) emits 5 values and "
                                             "the decoder takes 3"):
            irmae_keras.Autoencoder.from_official_checkpoint(self._checkpoint(tmp_path, edit))

    def test_an_override_that_does_not_fit_is_named(self, tmp_path):
        path = self._checkpoint(tmp_path, lambda state: None)
        with pytest.raises(ValueError, match="official shapes ae .*unexpected mlp.hidden.0.weight, "
                                             "mlp.hidden.1.weight"):
            irmae_keras.Autoencoder.from_official_checkpoint(path, variant="ae", linear_layers=0)
        with pytest.raises(ValueError, match="unknown override.*tying"):
            irmae_keras.Autoencoder.from_official_checkpoint(path, tying="shared")

    def test_models_the_official_code_cannot_express_are_refused(self, tmp_path):
        custom = irmae_keras.build_autoencoder(
            encoder=irmae_keras.architectures.build_encoder("shapes", 3),
            decoder=irmae_keras.architectures.build_decoder("shapes", 3))
        with pytest.raises(ValueError, match="architecture None; only the official shapes, mnist, celeb_a"):
            custom.save_official_checkpoint(str(tmp_path / "c.pth"))
        nonlinear = irmae_keras.build_autoencoder("shapes", latent_dim=3, stack_activation="relu")
        with pytest.raises(ValueError, match="activation between its matrices"):
            nonlinear.save_official_checkpoint(str(tmp_path / "c.pth"))
        assert not os.path.exists(tmp_path / "c.pth")
