import keras
import pytest

import irmae_keras
from irmae_keras.flops import flops_per_sample
from irmae_keras.flops import layer_flops


class TestFlops:
    @pytest.mark.parametrize(
        "preset, forward, train",
        [
            # Hand count from the layer lists in docs/paper.md.
            ("shapes", 26_873_856, 79_835_136),
            ("mnist", 49_086_464, 146_997_248),
            ("celeb_a", 4_128_243_712, 12_372_148_224),
        ],
    )
    def test_presets(self, preset, forward, train):
        flops = flops_per_sample(irmae_keras.build_autoencoder(preset))
        assert (flops["forward"], flops["train"]) == (forward, train)
        assert sum(flops["per_layer"].values()) == forward

    def test_each_layer_kind(self):
        model = irmae_keras.build_autoencoder("shapes", latent_dim=8, linear_layers=3)
        per_layer = flops_per_sample(model)["per_layer"]
        # conv_0: 16x16 outputs, each a 4x4x3 patch for 32 filters.
        assert per_layer["conv_0"] == 2 * 16 * 16 * (4 * 4 * 3) * 32
        # deconv_1: each of 2x2 inputs meets the 4x4x128x256 kernel.
        assert per_layer["deconv_1"] == 2 * 2 * 2 * (4 * 4 * 128 * 256)
        assert per_layer["linear_stack"] == 2 * 3 * 8 * 8
        dense = keras.layers.Dense(5)
        dense(keras.Input((7,)))
        assert layer_flops(dense) == 2 * 7 * 5
        assert layer_flops(keras.layers.ReLU()) == 0

    def test_tied_stack_counts_every_application(self):
        tied = irmae_keras.build_autoencoder("shapes", latent_dim=8, linear_layers=4, tying="shared")
        assert flops_per_sample(tied)["per_layer"]["linear_stack"] == 2 * 4 * 8 * 8
