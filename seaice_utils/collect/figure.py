"""The collection figure of notebook 01: scene footprints over the query region, thumbnails."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from seaice_utils.collect.products import scene_file

__all__ = ["collection_figure"]


def _parse_wkt(text: str) -> np.ndarray | None:
    nums = re.findall(r"(-?\d+(?:\.\d+)?) (-?\d+(?:\.\d+)?)", text or "")
    return np.array(nums, dtype=float) if nums else None


def collection_figure(records: Sequence, *, region: dict | Sequence[float] | None = None,
                      n_thumbs: int = 4, thumb_px: int = 256, title: str = ""):
    """Footprints of the scenes over the query region (when known) and a few thumbnails.

    Parameters
    ----------
    records : sequence of SceneRecord
        As returned by :func:`seaice_utils.collect.run.collect` /
        :func:`seaice_utils.data.dataset.ensure_dataset`; footprints come from the catalogue's
        ``footprint`` column (absent for synthetic scenes).
    region : dict or (west, south, east, north), optional
    n_thumbs : int
    thumb_px : int
        Thumbnail side in pixels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import cv2
    from matplotlib.figure import Figure

    from seaice_utils.core.scenes import read_scene

    if isinstance(region, dict):
        region = [region["west"], region["south"], region["east"], region["north"]]
    shown = list(records)[:n_thumbs]
    # a pyplot-free Figure: notebooks show the saved PNG once, not a second inline copy
    fig = Figure(figsize=(3.2 * (1 + max(len(shown), 1)), 3.4))
    axes = fig.subplots(1, 1 + max(len(shown), 1), squeeze=False)
    ax = axes[0, 0]
    feet = [(_parse_wkt(r.meta.get("footprint", "")), r.name) for r in records]
    feet = [(f, n) for f, n in feet if f is not None]
    if region is not None:
        w, s, e, n = region
        ax.plot([w, e, e, w, w], [s, s, n, n, s], "k--", lw=1, label="query region")
    for f, _ in feet:
        ax.fill(f[:, 0], f[:, 1], alpha=0.5, lw=0.5, ec="tab:blue", fc="tab:blue")
    if feet or region is not None:
        ax.set_xlabel("longitude")
        ax.set_ylabel("latitude")
    if feet:
        ax.set_title(f"{len(feet)} scene footprints")
    else:
        ax.text(0.5, 0.5, "no footprints\n(synthetic or\nungeoreferenced scenes)",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_title("footprints")
        if region is None:
            ax.set_xticks([])
            ax.set_yticks([])
    if region is not None:
        ax.legend(loc="lower left", fontsize=7)
    for i, rec in enumerate(shown):
        a = axes[0, i + 1]
        sc = read_scene(scene_file(rec), name=rec.name)
        a.imshow(cv2.resize(sc.rgb, (thumb_px, thumb_px), interpolation=cv2.INTER_AREA))
        a.set_title(rec.name, fontsize=7)
        a.axis("off")
    if not shown:
        axes[0, 1].axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
