"""A literal implementation of the paper's per-tile steps: the oracle the fast kernels must match.

Everything here follows the paper's description of the method (Iqrah et al. 2024) word for
word, with the OpenCV calls the published workflow used and none of the shortcuts of the
production kernels
(:func:`seaice_utils.labelling.cloudfilter.thin_cloud_shadow_filter`,
:func:`seaice_utils.labelling.autolabel.segment`):

* the thin-cloud and shadow filter converts to HSV with ``cv2.cvtColor`` and finds water with
  ``cv2.inRange``, paints a copy of the image white there, converts to grey, dilates, takes the
  155 px median blur, and runs the remaining steps (difference, Otsu, AND, min-max, truncation,
  min-max, threshold) one OpenCV call after the other, painting the three grey levels with masks;
* the colour segmentation converts the (filtered or original) RGB image to HSV, builds one
  ``cv2.inRange`` mask per class and paints the class colour (red thick, blue thin, green water)
  and the class number through each mask, in the order water, thin, thick.

It is deliberately slow and simple; tests (``tests/test_reference.py``) check that the production
kernels give bit-identical class maps, palette images and filtered levels, and
``tests/benchmarks/bench_labelling.py kernels`` (and notebook 03) measure how much faster they are.

:func:`reference_label_files` is the reference *run*: the sequential loop of the published
script (read a tile, label it with the literal steps, write its outputs), writing the same files
as :mod:`seaice_utils.labelling.pipeline` so the end-to-end benchmark compares like with like.

Examples
--------
>>> import numpy as np
>>> rgb = np.zeros((64, 64, 3), np.uint8); rgb[:, 20:] = 120; rgb[20:40, 30:50] = 250
>>> classes, palette, levels = reference_auto_label(rgb, filter_params=None)
>>> sorted(np.unique(classes).tolist()), palette[0, 0].tolist(), levels is None
([0, 1, 2], [0, 255, 0], True)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from seaice_utils.core.classes import NODATA, PALETTE
from seaice_utils.core.scenes import check_rgb, read_scene, write_json, write_png
from seaice_utils.core.tiling import iter_tiles, pad_to_multiple
from seaice_utils.engines.base import JobSummary
from seaice_utils.errors import InputError, SeaIceError
from seaice_utils.labelling.autolabel import Thresholds
from seaice_utils.labelling.cloudfilter import LEVEL_THICK, LEVEL_THIN, LEVEL_WATER, FilterParams
from seaice_utils.labelling.pipeline import LabelOptions, output_paths, sidecar

__all__ = ["reference_filter", "reference_segment", "reference_auto_label",
           "reference_label_files"]


def _reference_filter_once(rgb: np.ndarray, p: FilterParams,
                           nodata: np.ndarray | None) -> np.ndarray:
    # 1. HSV conversion; water mask = V <= water_v_max.
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    water = cv2.inRange(hsv, np.array([0, 0, 0]), np.array([185, 255, p.water_v_max]))
    if nodata is not None:
        water[nodata] = 255
    # 2. Copy the image, paint water white.
    painted = rgb.copy()
    painted[water > 0] = (255, 255, 255)
    # 3. Grey.
    grey = cv2.cvtColor(painted, cv2.COLOR_RGB2GRAY)
    # 4. Dilate with a square kernel of ones.
    dilated = cv2.dilate(grey, np.ones((p.dilation, p.dilation), np.uint8))
    # 5. Median blur of the dilated image: the background estimate.
    background = cv2.medianBlur(dilated, p.median_kernel)
    # 6. diff = 255 - |grey - background|.
    diff = 255 - cv2.absdiff(grey, background)
    # 7. Otsu threshold of diff -> mask; diff2 = diff AND mask.
    _, mask = cv2.threshold(diff, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    diff2 = cv2.bitwise_and(diff, mask)
    # 8. Min-max normalise to 0..255.
    norm1 = cv2.normalize(diff2, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
    # 9. Truncate.
    _, truncated = cv2.threshold(norm1, p.truncation, 255, cv2.THRESH_TRUNC)
    # 10. Min-max normalise again.
    norm2 = cv2.normalize(truncated, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
    # 11. Classify: thick >= threshold, thin otherwise, water from step 1; paint grey levels.
    levels = np.zeros(rgb.shape[:2], np.uint8)
    levels[norm2 >= p.thick_threshold] = LEVEL_THICK
    levels[norm2 < p.thick_threshold] = LEVEL_THIN
    levels[water > 0] = LEVEL_WATER
    return levels


def reference_filter(rgb: np.ndarray, params: FilterParams = FilterParams(), *,
                     nodata: np.ndarray | None = None) -> np.ndarray:
    """The 11 steps of the thin-cloud and shadow filter, literally.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 ndarray
    params : FilterParams
        ``apply_to="tile"`` runs the steps on each ``tile_size`` tile of the (padded) image.
    nodata : (H, W) bool ndarray, optional
        Treated as water; comes out as level 0.

    Returns
    -------
    (H, W) uint8 ndarray
        Grey levels 0 (water), 155 (thin), 255 (thick).
    """
    check_rgb(rgb)
    if nodata is not None and nodata.shape != rgb.shape[:2]:
        raise InputError(f"no-data mask shape {nodata.shape} does not match image {rgb.shape[:2]}")
    if params.apply_to == "scene":
        return _reference_filter_once(rgb, params, nodata)
    h, w = rgb.shape[:2]
    t = params.tile_size
    padded, mask = pad_to_multiple(rgb, t, nodata=nodata)
    out = np.zeros(padded.shape[:2], np.uint8)
    for r, c, view in iter_tiles(padded, t):
        out[r:r + t, c:c + t] = _reference_filter_once(np.ascontiguousarray(view), params,
                                                       mask[r:r + t, c:c + t])
    return out[:h, :w]


def reference_segment(rgb: np.ndarray, thresholds: Thresholds = Thresholds(), *,
                      nodata: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Colour segmentation, literally: HSV, one ``inRange`` mask per class, masked painting.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 ndarray
    thresholds : Thresholds
    nodata : (H, W) bool ndarray, optional
        Painted black / class 255 last.

    Returns
    -------
    classes : (H, W) uint8 ndarray
        0 water, 1 thin, 2 thick, 255 no-data; in no range: ``thresholds.unlabelled`` (255, or
        254 with ``allow_gaps``).
    palette : (H, W, 3) uint8 ndarray
        The labels painted green / blue / red (black where no class, magenta where unlabelled).
    """
    check_rgb(rgb)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    classes = np.full(rgb.shape[:2], thresholds.unlabelled, np.uint8)
    palette = np.zeros_like(rgb)
    palette[:] = PALETTE[thresholds.unlabelled]
    for cls, r in thresholds.ranges().items():
        mask = cv2.inRange(hsv, np.array(r.lower), np.array(r.upper))
        palette[mask > 0] = PALETTE[cls]
        classes[mask > 0] = cls
    if nodata is not None:
        if nodata.shape != rgb.shape[:2]:
            raise InputError(f"no-data mask shape {nodata.shape} does not match image "
                             f"{rgb.shape[:2]}")
        palette[nodata] = PALETTE[NODATA]
        classes[nodata] = NODATA
    return classes, palette


def reference_auto_label(rgb: np.ndarray, *, nodata: np.ndarray | None = None,
                         filter_params: FilterParams | None = FilterParams(),
                         thresholds: Thresholds = Thresholds()
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Filter (optional), write the levels as a grey RGB image, colour-segment it.

    Returns
    -------
    classes : (H, W) uint8 ndarray
    palette : (H, W, 3) uint8 ndarray
    levels : (H, W) uint8 ndarray or None
        Filtered grey levels, None when ``filter_params`` is None.
    """
    if filter_params is None:
        classes, palette = reference_segment(rgb, thresholds, nodata=nodata)
        return classes, palette, None
    levels = reference_filter(rgb, filter_params, nodata=nodata)
    grey_rgb = cv2.cvtColor(levels, cv2.COLOR_GRAY2RGB)
    classes, palette = reference_segment(grey_rgb, thresholds, nodata=nodata)
    return classes, palette, levels


def reference_label_files(files: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                          opts=None, *, progress: bool = False):
    """The reference run: label files one after the other with the literal steps.

    Each file is read with :func:`seaice_utils.core.scenes.read_scene`, labelled by
    :func:`reference_auto_label`, and its three outputs (class map, palette labels, sidecar) are
    written with the package's generic writers (``write_png``, OpenCV's PNG encoder, and
    ``write_json``): the straightforward version of what
    :func:`seaice_utils.labelling.pipeline.label_file` does. The images are pixel-identical to
    the engines' outputs and the sidecars equal; the PNG bytes differ (the engines use
    :mod:`seaice_utils.core.png`).

    Parameters
    ----------
    files : sequence of paths
    out_dir : path
    opts : seaice_utils.labelling.pipeline.LabelOptions, optional

    Returns
    -------
    seaice_utils.engines.base.JobSummary
    """
    from tqdm import tqdm

    opts = opts or LabelOptions()
    summary = JobSummary(verb="labelled")
    for f in tqdm([Path(f) for f in files], desc="reference labelling", unit="image",
                  disable=not progress):
        try:
            scene = read_scene(f, bands=opts.bands, nodata=opts.nodata, stretch=opts.stretch)
            if opts.expect_size is not None and scene.shape != tuple(opts.expect_size):
                raise InputError(f"{f.name}: size {scene.shape[0]}x{scene.shape[1]}, expected "
                                 f"{opts.expect_size[0]}x{opts.expect_size[1]}")
            classes, palette, _ = reference_auto_label(
                scene.rgb, nodata=scene.nodata, filter_params=opts.filter_params,
                thresholds=opts.thresholds)
            paths = output_paths(out_dir, scene.name)
            write_png(paths["classes"], classes)
            write_png(paths["labels"], palette)
            write_json(paths["sidecar"], sidecar(scene, classes, opts, f.name))
            summary.done.append(scene.name)
        except SeaIceError as exc:
            summary.failures.append((f.name, str(exc)))
    return summary
