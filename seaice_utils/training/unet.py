"""The paper's U-Net in tf.keras (Keras 2): a builder whose defaults are the published network.

Defaults (Iqrah et al. 2024, "U-Net"): input 256 x 256 x 1 (grey of the filtered image); a contracting path
of 5 steps with 16, 32, 64, 128, 256 filters, each ``conv3x3-ReLU, dropout, conv3x3-ReLU,
maxpool 2x2`` with dropouts 0.1, 0.1, 0.2, 0.2, 0.2; a bottleneck of 512 filters with dropout 0.3;
an expanding path of 5 steps, each ``transposed conv 2x2 stride 2, concatenate the skip,
conv3x3-ReLU, dropout, conv3x3-ReLU`` with dropouts 0.2, 0.2, 0.2, 0.1, 0.1; He-normal
initialisation, 'same' padding, and a final 1x1 convolution with a softmax over 3 classes
(0 water, 1 thin ice, 2 thick ice). That is 28 convolution layers and 7,775,347 parameters for one
input channel (the paper's "about 7.78 M").

Depth, base filters, dropouts and input channels are parameters, so that a reduced model (e.g. depth
4, base filters 8, for the quick profile) is the same architecture at a smaller scale. Filters double
at each step: step ``i`` of the contracting path has ``base_filters * 2**i`` filters and the
bottleneck ``base_filters * 2**depth``.

TensorFlow is imported inside the functions: ``import seaice_utils.training.unet`` is cheap and works
without TensorFlow (:func:`count_unet_params` needs no TensorFlow at all).

>>> count_unet_params()
7775347
>>> count_unet_params(depth=2, base_filters=4, input_channels=1)
7407
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from seaice_utils.core.classes import N_CLASSES
from seaice_utils.errors import InputError

__all__ = ["PAPER_ENCODER_DROPOUTS", "PAPER_BOTTLENECK_DROPOUT", "UNetConfig", "unet_config",
           "build_unet", "count_unet_params", "load_unet", "predict_classes"]

#: Dropouts of the paper's five contracting steps; the expanding path uses them in reverse.
PAPER_ENCODER_DROPOUTS = (0.1, 0.1, 0.2, 0.2, 0.2)
PAPER_BOTTLENECK_DROPOUT = 0.3


def _default_dropouts(depth: int) -> tuple[float, ...]:
    """The paper's schedule cut or extended (with 0.2) to ``depth`` steps."""
    d = PAPER_ENCODER_DROPOUTS
    return tuple(d[:depth]) if depth <= len(d) else d + (0.2,) * (depth - len(d))


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a U-Net; the defaults are the paper's network.

    Attributes
    ----------
    input_channels : int
        1 for the grey filtered image (the paper), 3 for RGB.
    tile_size : int or None
        Side of the square input; None accepts any size divisible by ``2**depth``.
    depth : int
        Contracting (= expanding) steps.
    base_filters : int
        Filters of the first step; doubled at each step.
    encoder_dropouts, decoder_dropouts : tuple of float
        One per step; the decoder's are listed from the deepest step to the output.
    bottleneck_dropout : float
    n_classes : int
    """

    input_channels: int = 1
    tile_size: int | None = 256
    depth: int = 5
    base_filters: int = 16
    encoder_dropouts: tuple[float, ...] = PAPER_ENCODER_DROPOUTS
    decoder_dropouts: tuple[float, ...] = tuple(reversed(PAPER_ENCODER_DROPOUTS))
    bottleneck_dropout: float = PAPER_BOTTLENECK_DROPOUT
    n_classes: int = N_CLASSES
    kernel_initializer: str = "he_normal"
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["encoder_dropouts"] = list(self.encoder_dropouts)
        d["decoder_dropouts"] = list(self.decoder_dropouts)
        return d


def unet_config(*, input_channels: int = 1, tile_size: int | None = 256, depth: int = 5,
                base_filters: int = 16, encoder_dropouts: Sequence[float] | None = None,
                decoder_dropouts: Sequence[float] | None = None,
                bottleneck_dropout: float = PAPER_BOTTLENECK_DROPOUT,
                n_classes: int = N_CLASSES, kernel_initializer: str = "he_normal") -> UNetConfig:
    """Check the arguments and return a :class:`UNetConfig`.

    ``encoder_dropouts`` defaults to the paper's 0.1, 0.1, 0.2, 0.2, 0.2 cut (or extended with 0.2)
    to ``depth``; ``decoder_dropouts`` defaults to the encoder's in reverse (the paper's
    0.2, 0.2, 0.2, 0.1, 0.1).

    Raises
    ------
    InputError
        Naming the argument and the value given.
    """
    def posint(name, v, lo=1):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise InputError(f"U-Net {name} must be an integer >= {lo} (got {v!r})")

    posint("depth", depth)
    posint("base_filters", base_filters)
    posint("input_channels", input_channels)
    posint("n_classes", n_classes, 2)
    if tile_size is not None:
        posint("tile_size", tile_size)
        if tile_size % (2 ** depth):
            raise InputError(f"U-Net tile_size must be divisible by 2**depth = {2 ** depth} "
                             f"(got {tile_size} for depth {depth})")
    enc = _default_dropouts(depth) if encoder_dropouts is None else tuple(float(x) for x in
                                                                          encoder_dropouts)
    dec = tuple(reversed(enc)) if decoder_dropouts is None else tuple(float(x) for x in
                                                                     decoder_dropouts)
    for name, v in (("encoder_dropouts", enc), ("decoder_dropouts", dec)):
        if len(v) != depth:
            raise InputError(f"U-Net {name} needs one value per step ({depth}) (got {list(v)})")
        if not all(0.0 <= x < 1.0 for x in v):
            raise InputError(f"U-Net {name} must lie in [0, 1) (got {list(v)})")
    if not 0.0 <= float(bottleneck_dropout) < 1.0:
        raise InputError(f"U-Net bottleneck_dropout must lie in [0, 1) (got {bottleneck_dropout!r})")
    return UNetConfig(input_channels=input_channels, tile_size=tile_size, depth=depth,
                      base_filters=base_filters, encoder_dropouts=enc, decoder_dropouts=dec,
                      bottleneck_dropout=float(bottleneck_dropout), n_classes=n_classes,
                      kernel_initializer=kernel_initializer)


def count_unet_params(*, input_channels: int = 1, depth: int = 5, base_filters: int = 16,
                      n_classes: int = N_CLASSES) -> int:
    """Trainable parameters of the U-Net, computed in closed form (no TensorFlow needed).

    Parameters
    ----------
    input_channels, depth, base_filters, n_classes : int

    Returns
    -------
    int
        Equal to ``build_unet(...).count_params()`` (tested).
    """
    def conv(k, cin, cout):
        return k * k * cin * cout + cout

    total, cin = 0, input_channels
    for i in range(depth):
        f = base_filters * 2 ** i
        total += conv(3, cin, f) + conv(3, f, f)
        cin = f
    f = base_filters * 2 ** depth
    total += conv(3, cin, f) + conv(3, f, f)
    cin = f
    for i in reversed(range(depth)):
        f = base_filters * 2 ** i
        total += conv(2, cin, f)                          # transposed conv 2x2
        total += conv(3, 2 * f, f) + conv(3, f, f)        # after concatenating the skip
        cin = f
    return total + conv(1, cin, n_classes)


def build_unet(config: UNetConfig | None = None, *, name: str = "unet", **kwargs):
    """Build the (uncompiled) U-Net as a ``tf.keras.Model``.

    Parameters
    ----------
    config : UNetConfig, optional
        Default: the paper's network; or pass :func:`unet_config` keywords directly
        (``build_unet(depth=2, base_filters=4)``).
    name : str, keyword-only

    Returns
    -------
    tf.keras.Model
        Input ``(batch, tile, tile, input_channels)`` float32 in 0..1; output
        ``(batch, tile, tile, n_classes)`` softmax probabilities, float32 even under a
        ``mixed_float16`` policy (the final activation is computed in float32).
    """
    import tensorflow as tf

    if config is None:
        config = unet_config(**kwargs)
    elif kwargs:
        raise InputError(f"give either a UNetConfig or keywords, not both (got {sorted(kwargs)})")
    L = tf.keras.layers
    c = config
    init = c.kernel_initializer

    def conv(x, f, k=3):
        return L.Conv2D(f, k, activation="relu", kernel_initializer=init, padding="same")(x)

    inputs = tf.keras.Input((c.tile_size, c.tile_size, c.input_channels), name="image")
    x, skips = inputs, []
    for i in range(c.depth):
        f = c.base_filters * 2 ** i
        x = conv(x, f)
        x = L.Dropout(c.encoder_dropouts[i])(x)
        x = conv(x, f)
        skips.append(x)
        x = L.MaxPooling2D((2, 2), strides=2)(x)
    f = c.base_filters * 2 ** c.depth
    x = conv(x, f)
    x = L.Dropout(c.bottleneck_dropout)(x)
    x = conv(x, f)
    for j, i in enumerate(reversed(range(c.depth))):
        f = c.base_filters * 2 ** i
        x = L.Conv2DTranspose(f, (2, 2), strides=(2, 2), padding="same",
                              kernel_initializer=init)(x)
        x = L.concatenate([x, skips[i]])
        x = conv(x, f)
        x = L.Dropout(c.decoder_dropouts[j])(x)
        x = conv(x, f)
    logits = L.Conv2D(c.n_classes, 1, kernel_initializer=init, padding="same", name="logits")(x)
    probs = L.Activation("softmax", dtype="float32", name="classes")(logits)
    return tf.keras.Model(inputs, probs, name=name)


def load_unet(path):
    """Load a model saved by :mod:`seaice_utils.training.worker` (``.keras``), uncompiled."""
    import tensorflow as tf

    return tf.keras.models.load_model(str(path), compile=False)


def predict_classes(model, images, *, batch_size: int = 8):
    """Class maps of a batch of tiles.

    Parameters
    ----------
    model : tf.keras.Model
    images : (N, H, W) or (N, H, W, C) uint8 ndarray
        Tiles as stored (grey filtered levels or RGB); scaled to 0..1 here as in training.

    Returns
    -------
    (N, H, W) uint8 ndarray
        0 water, 1 thin, 2 thick.
    """
    import numpy as np

    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise InputError(f"predict_classes takes (N, H, W[, C]) tiles (got shape {x.shape})")
    want = model.input_shape[-1]
    if x.shape[-1] != want:
        raise InputError(f"model expects {want} input channel(s), tiles have {x.shape[-1]}")
    probs = model.predict(x.astype("float32") / 255.0, batch_size=batch_size, verbose=0)
    return np.argmax(probs, axis=-1).astype(np.uint8)
