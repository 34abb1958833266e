"""Typed settings of the labelling stage, built once from a validated profile.

Both builders check what single keys cannot: :func:`filter_params` the order of the filter
constants (:class:`~seaice_utils.labelling.cloudfilter.FilterParams`), :func:`thresholds` the
gaps, overlaps and order of the HSV ranges
(:func:`~seaice_utils.labelling.autolabel.threshold_problems`). Order problems are always errors;
gaps and overlaps are errors unless the profile says ``autolabel.allow_gaps: true`` (pixels in no
range then become *unlabelled*, code 254; :func:`seaice_utils.params.load_params_dict` warns
about each once).
"""

from __future__ import annotations

from typing import Any

from seaice_utils.core.scenes import Stretch
from seaice_utils.errors import InputError, ParamsError
from seaice_utils.labelling.autolabel import Thresholds, threshold_problems
from seaice_utils.labelling.cloudfilter import FilterParams
from seaice_utils.labelling.pipeline import LabelOptions

__all__ = ["filter_params", "thresholds", "label_options", "memory_limit_bytes"]

_ALLOW = ("set autolabel.allow_gaps: true to label such pixels 'unlabelled' (code 254) and let "
          "the later class win overlaps")


def filter_params(params: dict) -> FilterParams:
    """The :class:`~seaice_utils.labelling.cloudfilter.FilterParams` of a loaded profile.

    Raises
    ------
    ParamsError
        Constants that contradict each other, e.g. ``filter.water_v_max`` not below
        ``filter.thick_threshold``.
    """
    try:
        return FilterParams(tile_size=params["global"]["tile_size"], **params["filter"])
    except InputError as exc:
        raise ParamsError(str(exc)) from exc


def thresholds(params: dict) -> Thresholds:
    """The :class:`~seaice_utils.labelling.autolabel.Thresholds` of a loaded profile.

    Raises
    ------
    ParamsError
        A bad range, ranges out of order, or (without ``autolabel.allow_gaps``) a gap or an
        overlap; the message names the V values and the bounds, e.g. ``autolabel: V 151..204 is
        in no class's range (autolabel.thin.upper.V = 150, autolabel.thick.lower.V = 205); ...``.

    Examples
    --------
    >>> from seaice_utils.params import defaults
    >>> p = defaults(); p["autolabel"]["thin"]["upper"] = [185, 255, 150]
    >>> thresholds(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    seaice_utils.errors.ParamsError: autolabel: V 151..204 is in no class's range (autolabel.thin.upper.V = 150, autolabel.thick.lower.V = 205); ...
    """
    try:
        th = Thresholds.from_dict(params["autolabel"])
    except InputError as exc:
        raise ParamsError(f"autolabel: {exc}") from exc
    problems = threshold_problems(th)
    order = [p.message for p in problems if p.kind == "order"]
    if order:
        raise ParamsError("autolabel: " + "; ".join(order))
    if problems and not th.allow_gaps:
        raise ParamsError("autolabel: " + "; ".join(p.message for p in problems) + f"; {_ALLOW}")
    return th


def memory_limit_bytes(params: dict) -> int:
    """The memory one worker may use for a scene (``global.worker_memory_gb``), in bytes."""
    return int(float(params["global"]["worker_memory_gb"]) * 2 ** 30)


def label_options(params: dict, *, no_filter: bool = False, bands=None, nodata=None,
                  stretch: Stretch | None = None, expect_size=None, **_: Any) -> LabelOptions:
    """The :class:`~seaice_utils.labelling.pipeline.LabelOptions` of a loaded profile: its
    filter (none with ``no_filter``) and thresholds, how to read the inputs, the memory limit.
    ``seaice label``, ``seaice season`` and the notebooks build their options here."""
    return LabelOptions(filter_params=None if no_filter else filter_params(params),
                        thresholds=thresholds(params), bands=bands, nodata=nodata,
                        stretch=stretch or Stretch(), expect_size=expect_size,
                        max_bytes=memory_limit_bytes(params),
                        png_renders=params["global"]["png_renders"])
