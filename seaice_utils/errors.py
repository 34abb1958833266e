"""Exceptions raised by the compendium, so callers can catch bad input apart from bugs."""

__all__ = ["SeaIceError", "InputError", "ParamsError"]


class SeaIceError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(SeaIceError, ValueError):
    """Bad input data: missing or corrupt file, wrong size, wrong dtype, wrong shape."""


class ParamsError(SeaIceError, ValueError):
    """A parameter file or value is invalid; the message names the offending key."""
