"""Shared fixtures: tiny images, the real-sample folder (skips when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL_SAMPLES = Path(os.environ.get("SEAICE_REAL_SAMPLES", ROOT.parent / "shared" / "real-samples"))
ROSS_SEA = REAL_SAMPLES / "ross_sea_2019-11_render_1086px.png"


@pytest.fixture
def ross_sea_path() -> Path:
    if not ROSS_SEA.is_file():
        pytest.skip(f"real sample not available ({ROSS_SEA})")
    return ROSS_SEA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def grey_rgb(values, shape=None) -> np.ndarray:
    """RGB uint8 image whose three channels equal ``values``."""
    v = np.asarray(values, np.uint8)
    if shape is not None:
        v = np.broadcast_to(v, shape)
    return np.repeat(v[..., None], 3, axis=-1).copy()
