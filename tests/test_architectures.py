import keras
import numpy as np
import pytest

from irmae_keras import architectures
from tests.helpers import run_model_saving_test


def _weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


def _summary(model):
    """(type, filters/units, kernel size, strides, padding, activation) per layer."""
    rows = []
    for layer in _weighted_layers(model):
        if isinstance(layer, keras.layers.Dense):
            rows.append(("dense", layer.units, None, None, None, layer.activation.__name__))
        else:
            kind = "deconv" if isinstance(layer, keras.layers.Conv2DTranspose) else "conv"
            rows.append(
                (kind, layer.filters, layer.kernel_size[0], layer.strides[0],
                 layer.padding, layer.activation.__name__)
            )
    return rows


EXPECTED_ENCODERS = {
    "shapes": [("conv", c, 4, 2, "same", "relu") for c in (32, 64, 128, 256)]
    + [("conv", "n", 2, 1, "valid", "linear")],
    "mnist": [("conv", c, 4, 2, "same", "relu") for c in (32, 64, 128, 256)]
    + [("dense", "n", None, None, None, "linear")],
    "celeb_a": [("conv", c, 4, 2, "same", "relu") for c in (128, 256, 512, 1024)]
    + [("dense", "n", None, None, None, "linear")],
}
EXPECTED_DECODERS = {
    "shapes": [("deconv", 256, 2, 1, "valid", "relu")]
    + [("deconv", c, 4, 2, "same", "relu") for c in (128, 64, 32)]
    + [("deconv", 3, 4, 2, "same", "linear")],
    "mnist": [("dense", 8 * 8 * 128, None, None, None, "relu")]
    + [("deconv", c, 4, 2, "same", "relu") for c in (64, 32)]
    + [("deconv", 1, 1, 1, "same", "linear")],
    "celeb_a": [("dense", 8 * 8 * 1024, None, None, None, "linear")]
    + [("deconv", c, 4, 2, "same", "relu") for c in (512, 256, 128)]
    + [("deconv", 3, 1, 1, "same", "linear")],
}


def _with_n(rows, n):
    return [tuple(n if v == "n" else v for v in row) for row in rows]


@pytest.mark.parametrize("name", ["shapes", "mnist", "celeb_a"])
class TestLayerLists:
    def test_encoder_matches_official_layer_list(self, name):
        encoder = architectures.build_encoder(name, 7)
        assert _summary(encoder) == _with_n(EXPECTED_ENCODERS[name], 7)

    def test_decoder_matches_official_layer_list(self, name):
        decoder = architectures.build_decoder(name, 7)
        assert _summary(decoder) == _with_n(EXPECTED_DECODERS[name], 7)
        assert decoder.layers[-1].activation.__name__ == "tanh"

    def test_no_normalisation_or_dropout(self, name):
        layers = (
            architectures.build_encoder(name, 7).layers
            + architectures.build_decoder(name, 7).layers
        )
        forbidden = (keras.layers.BatchNormalization, keras.layers.Dropout)
        assert not any(isinstance(layer, forbidden) for layer in layers)


@pytest.mark.parametrize("name", ["shapes", "mnist", "celeb_a"])
@pytest.mark.parametrize("n", [7, 32, 128])
def test_output_shapes(name, n):
    shape = architectures.image_shape(name)
    encoder = architectures.build_encoder(name, n)
    decoder = architectures.build_decoder(name, n)
    assert encoder.output_shape == (None, n)
    assert decoder.output_shape == (None, *shape)
    images = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    codes = encoder(images)
    assert tuple(codes.shape) == (2, n)
    out = keras.ops.convert_to_numpy(decoder(codes))
    assert out.shape == (2, *shape)
    assert out.min() >= -1 and out.max() <= 1


def test_intermediate_sizes_follow_the_facts():
    # shapes: 32² → 16² → 8² → 4² → 2² → 1×1 and back.
    encoder = architectures.build_encoder("shapes", 5)
    sizes = [layer.output.shape[1] for layer in _weighted_layers(encoder)]
    assert sizes == [16, 8, 4, 2, 1]
    decoder = architectures.build_decoder("shapes", 5)
    sizes = [layer.output.shape[1] for layer in _weighted_layers(decoder)]
    assert sizes == [2, 4, 8, 16, 32]
    celeb = architectures.build_decoder("celeb_a", 5)
    sizes = [layer.output.shape[1] for layer in _weighted_layers(celeb)[1:]]
    assert sizes == [16, 32, 64, 64]


def _numpy_conv(x, w, b, stride, pad):
    """Cross-correlation with explicit zero padding, as PyTorch's Conv2d."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    k = w.shape[0]
    out_size = (x.shape[1] - k) // stride + 1
    out = np.zeros((x.shape[0], out_size, out_size, w.shape[-1]))
    for i in range(out_size):
        for j in range(out_size):
            patch = x[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out + b


def _numpy_conv_transpose(x, w, b, stride, pad):
    """PyTorch's ConvTranspose2d: scatter each input pixel, crop `pad` each side.

    `w` is Keras' (k, k, out, in) kernel.
    """
    k = w.shape[0]
    size = x.shape[1]
    full = (size - 1) * stride + k
    out = np.zeros((x.shape[0], full, full, w.shape[2]))
    for i in range(size):
        for j in range(size):
            contribution = np.tensordot(x[:, i, j, :], w, axes=([1], [3]))
            out[:, i * stride:i * stride + k, j * stride:j * stride + k, :] += contribution
    return out[:, pad:full - pad, pad:full - pad, :] + b


def test_conv_padding_equals_reference_one_pixel_each_side():
    encoder = architectures.build_encoder("shapes", 4)
    conv = encoder.get_layer("conv_1")  # 32 → 64 channels, 16² → 8²
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 32)).astype("float32")
    w, b = (keras.ops.convert_to_numpy(v) for v in conv.weights)
    expected = np.maximum(_numpy_conv(x, w, b, stride=2, pad=1), 0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(conv(x)), expected, atol=1e-4)


def test_conv_transpose_padding_equals_reference_one_pixel_each_side():
    decoder = architectures.build_decoder("shapes", 4)
    deconv = decoder.get_layer("deconv_2")  # 128 → 64 channels, 4² → 8²
    x = np.random.default_rng(1).normal(size=(2, 4, 4, 128)).astype("float32")
    w, b = (keras.ops.convert_to_numpy(v) for v in deconv.weights)
    expected = np.maximum(_numpy_conv_transpose(x, w, b, stride=2, pad=1), 0)
    assert expected.shape == (2, 8, 8, 64)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(deconv(x)), expected, atol=1e-4)


def test_torch_initializer_bounds_match_pytorch_defaults():
    encoder = architectures.build_encoder("mnist", 16)
    conv = encoder.get_layer("conv_1")  # in 32 channels, kernel 4 → fan_in 512
    kernel, bias = (keras.ops.convert_to_numpy(v) for v in conv.weights)
    bound = 1 / np.sqrt(32 * 16)
    assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.98 * bound
    assert np.abs(bias).max() <= bound and np.abs(bias).std() > 0
    decoder = architectures.build_decoder("mnist", 16)
    deconv = decoder.get_layer("deconv_1")  # PyTorch fan_in of ConvTranspose = out*k*k
    kernel = keras.ops.convert_to_numpy(deconv.kernel)
    bound = 1 / np.sqrt(64 * 16)
    assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.98 * bound


def test_keras_initializer_option_uses_keras_defaults():
    encoder = architectures.build_encoder("mnist", 16, initializer="keras")
    bias = keras.ops.convert_to_numpy(encoder.get_layer("conv_0").bias)
    np.testing.assert_array_equal(bias, 0)


def test_sigmoid_output_is_in_unit_interval():
    decoder = architectures.build_decoder("mnist", 8, output_activation="sigmoid")
    out = keras.ops.convert_to_numpy(decoder(np.random.default_rng(0).normal(size=(3, 8)) * 10))
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: architectures.build_encoder("cifar", 8), r"`architecture` must be one of \['celeb_a', 'mnist', 'shapes'\]"),
        (lambda: architectures.build_encoder("mnist", 0), "`code_dim` must be an integer >= 1"),
        (lambda: architectures.build_decoder("mnist", -3), "`latent_dim` must be an integer >= 1"),
        (lambda: architectures.build_decoder("mnist", 8, output_activation="relu"), "`output_activation` must be one of"),
        (lambda: architectures.build_encoder("mnist", 8, initializer="he"), r"`initializer` must be one of \['keras', 'torch'\]"),
    ],
)
def test_invalid_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_networks_save_and_load(tmp_path):
    encoder = architectures.build_encoder("shapes", 6)
    run_model_saving_test(
        encoder, np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32), tmp_path
    )
