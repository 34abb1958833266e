"""Preview samples for tuning (notebook 02): a few scenes of a dataset, cropped or resized.

* :class:`TuningSample` — one preview image with its no-data mask, reference class map and cloud
  mask where the dataset has them.
* :func:`crop_or_resize` — fit an image (or mask, or class map) into a preview size.
* :func:`load_samples` — the first scenes of a dataset as samples.
* :func:`cloudiest` — the sample with the largest cloud/shadow share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from seaice_utils.core.scenes import check_rgb
from seaice_utils.data.dataset import load_cloud, load_scene, load_truth
from seaice_utils.errors import InputError

__all__ = ["TuningSample", "crop_or_resize", "load_samples", "cloudiest"]


@dataclass(frozen=True)
class TuningSample:
    """One preview image with what is known about it.

    Attributes
    ----------
    name : str
    rgb : (H, W, 3) uint8 ndarray
    nodata : (H, W) bool ndarray
    truth : (H, W) uint8 ndarray or None
        Reference class map (0 water, 1 thin, 2 thick, 255 no-data).
    cloud : (H, W) uint8 ndarray or None
        Cloud mask (0 clear, 1 haze, 2 shadow).
    """

    name: str
    rgb: np.ndarray
    nodata: np.ndarray
    truth: np.ndarray | None = None
    cloud: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_rgb(self.rgb, what=f"sample {self.name!r}")
        shape = self.rgb.shape[:2]
        for what, arr in (("nodata", self.nodata), ("truth", self.truth), ("cloud", self.cloud)):
            if arr is not None and np.shape(arr) != shape:
                raise InputError(f"sample {self.name!r}: {what} shape {np.shape(arr)} does not "
                                 f"match the image {shape}")
        if self.nodata.dtype != bool:
            raise InputError(f"sample {self.name!r}: nodata must be bool (got {self.nodata.dtype})")
        if self.truth is not None and self.truth.dtype != np.uint8:
            raise InputError(f"sample {self.name!r}: truth must be a uint8 class map "
                             f"(got {self.truth.dtype})")

    @property
    def cloud_fraction(self) -> float:
        """Share of data pixels under haze or shadow (NaN without a cloud mask)."""
        if self.cloud is None:
            return float("nan")
        data = ~self.nodata
        n = int(data.sum())
        return float(((self.cloud > 0) & data).sum()) / n if n else float("nan")


def crop_or_resize(array: np.ndarray, size: int, *, mode: str = "crop",
                   nearest: bool = False) -> np.ndarray:
    """Fit an image into ``size`` x ``size`` pixels.

    Parameters
    ----------
    array : (H, W) or (H, W, C) ndarray
    size : int
        Largest side of the result.
    mode : {"crop", "resize"}
        ``crop`` keeps the centre ``size`` x ``size`` window at full resolution (the filter's
        kernels are in pixels, so this previews what the pipeline does); ``resize`` shrinks the
        whole image (area averaging, or nearest neighbour for masks and class maps).
    nearest : bool
        Resize with nearest neighbour (for masks and class maps).

    Returns
    -------
    ndarray
        Sides ``min(H, size)`` x ``min(W, size)`` for ``crop``; the longer side ``size`` (aspect
        kept) for ``resize`` of a larger image. Images already small enough come back unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> crop_or_resize(np.zeros((100, 60), np.uint8), 50).shape
    (50, 50)
    >>> crop_or_resize(np.zeros((100, 60), np.uint8), 50, mode="resize").shape
    (50, 30)
    """
    if mode not in ("crop", "resize"):
        raise InputError(f"preview mode must be 'crop' or 'resize' (got {mode!r})")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise InputError(f"preview size must be a positive integer (got {size!r})")
    h, w = array.shape[:2]
    if max(h, w) <= size and (mode == "resize" or (h <= size and w <= size)):
        return array
    if mode == "crop":
        top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
        return np.ascontiguousarray(array[top:top + size, left:left + size])
    scale = size / max(h, w)
    new = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    src = array.astype(np.uint8) if array.dtype == bool else array
    out = cv2.resize(src, new, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)
    return out.astype(bool) if array.dtype == bool else out


def load_samples(records: Sequence, params: dict, *, n: int | None = None,
                 size: int | None = None, mode: str | None = None) -> list[TuningSample]:
    """Read the first ``n`` scenes of a dataset as preview samples.

    Parameters
    ----------
    records : sequence of :class:`~seaice_utils.data.dataset.SceneRecord`
        As returned by :func:`seaice_utils.data.dataset.ensure_dataset`.
    params : dict
        Loaded profile; ``tuning.scenes``, ``tuning.preview_size`` and ``tuning.preview_mode``
        give the defaults of ``n``, ``size`` and ``mode``.

    Returns
    -------
    list of TuningSample
        Images cropped (or resized) with :func:`crop_or_resize`; truth and cloud masks where the
        dataset has them.
    """
    t = params["tuning"]
    n = t["scenes"] if n is None else n
    size = t["preview_size"] if size is None else size
    mode = t.get("preview_mode", "crop") if mode is None else mode
    records = list(records)
    if not records:
        raise InputError("no scenes to preview (the dataset is empty)")
    out = []
    for rec in records[:n]:
        scene = load_scene(rec)
        truth, cloud = load_truth(rec), load_cloud(rec)
        for what, arr in (("reference class map", truth), ("cloud mask", cloud)):
            if arr is not None and arr.shape != scene.shape:
                raise InputError(f"{what} of {rec.name} is {arr.shape[:2]}, the scene "
                                 f"{scene.shape}")
        out.append(TuningSample(
            name=rec.name,
            rgb=crop_or_resize(scene.rgb, size, mode=mode),
            nodata=crop_or_resize(scene.nodata, size, mode=mode, nearest=True),
            truth=None if truth is None else crop_or_resize(truth, size, mode=mode, nearest=True),
            cloud=None if cloud is None else crop_or_resize(cloud, size, mode=mode, nearest=True)))
    return out


def cloudiest(samples: Sequence[TuningSample]) -> TuningSample:
    """The sample with the largest cloud/shadow share (the first one if none has a cloud mask)."""
    if not samples:
        raise InputError("cloudiest needs at least one sample")
    cf = [s.cloud_fraction for s in samples]
    if all(np.isnan(cf)):
        return samples[0]
    return samples[int(np.nanargmax(cf))]

