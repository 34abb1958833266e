"""The U-Net builder: the paper's architecture, its parameter count, and the reduced variants."""

import numpy as np
import pytest

from seaice_utils.errors import InputError
from seaice_utils.training.unet import PAPER_ENCODER_DROPOUTS, count_unet_params, unet_config

tf = pytest.importorskip("tensorflow")

from seaice_utils.training.unet import build_unet, predict_classes  # noqa: E402


@pytest.fixture(scope="module")
def paper_model():
    return build_unet()


def test_paper_model_has_about_7_78_million_parameters(paper_model):
    n = paper_model.count_params()
    print(f"paper U-Net (1 channel): {n:,} parameters")
    assert n == 7_775_347
    assert round(n / 1e6, 2) == 7.78
    assert n == count_unet_params()


def test_paper_model_layers(paper_model):
    L = tf.keras.layers
    convs = [la for la in paper_model.layers if isinstance(la, L.Conv2D)]  # incl. transposed
    assert len(convs) == 28
    transposed = [la for la in convs if isinstance(la, L.Conv2DTranspose)]
    assert [la.filters for la in transposed] == [256, 128, 64, 32, 16]
    assert all(la.kernel_size == (2, 2) and la.strides == (2, 2) for la in transposed)
    plain = [la for la in convs if not isinstance(la, L.Conv2DTranspose)]
    assert [la.filters for la in plain[:12]] == [16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512, 512]
    assert all(la.kernel_initializer.__class__.__name__ == "HeNormal" for la in convs)
    assert all(la.padding == "same" for la in convs)
    rates = [la.rate for la in paper_model.layers if isinstance(la, L.Dropout)]
    assert rates == pytest.approx([0.1, 0.1, 0.2, 0.2, 0.2, 0.3, 0.2, 0.2, 0.2, 0.1, 0.1])
    pools = [la for la in paper_model.layers if isinstance(la, L.MaxPooling2D)]
    assert len(pools) == 5
    assert paper_model.input_shape == (None, 256, 256, 1)
    assert paper_model.output_shape == (None, 256, 256, 3)
    assert paper_model.layers[-1].activation.__name__ == "softmax"


@pytest.mark.parametrize("kw", [dict(depth=2, base_filters=4), dict(depth=4, base_filters=8),
                                dict(input_channels=3, depth=3, base_filters=4)])
def test_closed_form_count_matches_keras(kw):
    assert build_unet(**kw).count_params() == count_unet_params(**kw)


def test_rgb_input_adds_only_first_layer_weights():
    # 2 extra channels x 3x3 kernels x 16 filters
    assert count_unet_params(input_channels=3) - count_unet_params() == 2 * 9 * 16


def test_tiny_model_outputs_probabilities():
    m = build_unet(depth=2, base_filters=4, tile_size=64)
    x = np.random.default_rng(0).random((2, 64, 64, 1), np.float32)
    p = m(x, training=False).numpy()
    assert p.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)
    assert (p >= 0).all()


def test_any_size_when_tile_size_is_none():
    m = build_unet(depth=2, base_filters=4, tile_size=None)
    assert m(np.zeros((1, 32, 96, 1), np.float32)).shape == (1, 32, 96, 3)


def test_mixed_precision_output_stays_float32():
    policy = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        m = build_unet(depth=2, base_filters=4, tile_size=32)
        assert m.layers[1].compute_dtype == "float16"
        assert m.output.dtype == tf.float32
    finally:
        tf.keras.mixed_precision.set_global_policy(policy)


def test_default_dropout_schedules():
    c = unet_config()
    assert c.encoder_dropouts == PAPER_ENCODER_DROPOUTS
    assert c.decoder_dropouts == (0.2, 0.2, 0.2, 0.1, 0.1)
    assert unet_config(depth=4, tile_size=64).encoder_dropouts == (0.1, 0.1, 0.2, 0.2)
    assert unet_config(depth=4, tile_size=64).decoder_dropouts == (0.2, 0.2, 0.1, 0.1)
    assert unet_config(depth=6, tile_size=256).encoder_dropouts[-1] == 0.2
    m = build_unet(depth=2, base_filters=4, tile_size=32, encoder_dropouts=[0.0, 0.5],
                   bottleneck_dropout=0.0)
    rates = [la.rate for la in m.layers if isinstance(la, tf.keras.layers.Dropout)]
    assert rates == pytest.approx([0.0, 0.5, 0.0, 0.5, 0.0])


@pytest.mark.parametrize("kw, msg", [
    (dict(tile_size=100), "divisible by 2\\*\\*depth = 32"),
    (dict(depth=0), "depth must be an integer >= 1"),
    (dict(encoder_dropouts=[0.1, 0.1]), "one value per step \\(5\\)"),
    (dict(decoder_dropouts=[1.0] * 5), "\\[0, 1\\)"),
    (dict(bottleneck_dropout=-0.1), "bottleneck_dropout"),
    (dict(base_filters=2.5), "base_filters must be an integer"),
])
def test_bad_config_says_what_was_wrong(kw, msg):
    with pytest.raises(InputError, match=msg):
        unet_config(**kw)


def test_predict_classes_checks_channels():
    m = build_unet(depth=2, base_filters=4, tile_size=32)
    tiles = np.full((3, 32, 32), 155, np.uint8)
    out = predict_classes(m, tiles)
    assert out.shape == (3, 32, 32) and out.dtype == np.uint8 and out.max() <= 2
    with pytest.raises(InputError, match="expects 1 input channel"):
        predict_classes(m, np.zeros((1, 32, 32, 3), np.uint8))
