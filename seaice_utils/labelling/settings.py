"""Typed settings of the labelling stage, built once from a validated profile."""

from __future__ import annotations

from seaice_utils.errors import InputError, ParamsError
from seaice_utils.labelling.autolabel import Thresholds
from seaice_utils.labelling.cloudfilter import FilterParams

__all__ = ["filter_params", "thresholds"]


def filter_params(params: dict) -> FilterParams:
    """The :class:`~seaice_utils.labelling.cloudfilter.FilterParams` of a loaded profile."""
    return FilterParams(tile_size=params["global"]["tile_size"], **params["filter"])


def thresholds(params: dict) -> Thresholds:
    """The :class:`~seaice_utils.labelling.autolabel.Thresholds` of a loaded profile."""
    try:
        return Thresholds.from_dict(params["autolabel"])
    except InputError as exc:
        raise ParamsError(f"autolabel: {exc}") from exc
