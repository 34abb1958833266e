"""The collection figure of notebook 01: scene footprints over the query region, thumbnails.

The footprints are drawn in polar stereographic coordinates, km: EPSG:3031 (Antarctic Polar
Stereographic) for a region south of the equator, EPSG:3413 (NSIDC Sea Ice Polar Stereographic
North) otherwise, so that the Ross Sea looks as on a map of Antarctica and the areas compare.
The catalogue's footprints (WKT polygons in lon/lat) and the query box are densified along their
edges in lon/lat (box edges follow meridians and parallels) and projected with
:func:`rasterio.warp.transform` (PROJ, offline). Longitudes are unwrapped along each ring, so a
footprint crossing the antimeridian (179.9 -> -179.9) stays one small polygon.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from seaice_utils.collect.products import scene_file
from seaice_utils.core.scenes import read_scene

__all__ = ["collection_figure", "polar_crs", "project_ring", "region_outline"]

#: Polar stereographic CRS per hemisphere, and its name for the axis labels.
POLAR_CRS = {"south": ("EPSG:3031", "Antarctic Polar Stereographic"),
             "north": ("EPSG:3413", "NSIDC Sea Ice Polar Stereographic North")}
_PER_EDGE = 32          # points per ring edge after densifying


def _parse_wkt(text: str) -> list[np.ndarray]:
    """The rings of a WKT (MULTI)POLYGON as (N, 2) lon/lat arrays."""
    rings = []
    for body in re.findall(r"\(([^()]+)\)", text or ""):
        nums = re.findall(r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s+(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)",
                          body)
        if len(nums) >= 3:
            rings.append(np.array(nums, dtype=float))
    return rings


def polar_crs(lat: float) -> tuple[str, str]:
    """(EPSG code, name) of the polar stereographic CRS of a latitude's hemisphere.

    >>> polar_crs(-74.0)[0], polar_crs(70.0)[0]
    ('EPSG:3031', 'EPSG:3413')
    """
    return POLAR_CRS["south" if lat < 0 else "north"]


def _unwrap(lon: np.ndarray) -> np.ndarray:
    """Longitudes made continuous along a ring (no jump of more than 180 degrees)."""
    lon = np.asarray(lon, dtype=float)
    if lon.size < 2:
        return lon
    steps = (np.diff(lon) + 180.0) % 360.0 - 180.0
    return np.concatenate([lon[:1], lon[0] + np.cumsum(steps)])


def _densify(lon: np.ndarray, lat: np.ndarray, n: int = _PER_EDGE) -> tuple[np.ndarray, np.ndarray]:
    """Each edge of a closed ring cut into ``n`` pieces (linear in lon/lat)."""
    if lon[0] != lon[-1] or lat[0] != lat[-1]:
        lon, lat = np.append(lon, lon[0]), np.append(lat, lat[0])
    t = np.linspace(0.0, 1.0, n, endpoint=False)
    xs = [lon[i] + t * (lon[i + 1] - lon[i]) for i in range(len(lon) - 1)]
    ys = [lat[i] + t * (lat[i + 1] - lat[i]) for i in range(len(lat) - 1)]
    return np.append(np.concatenate(xs), lon[0]), np.append(np.concatenate(ys), lat[0])


def project_ring(lonlat: np.ndarray, crs: str, *, densify: int = _PER_EDGE) -> np.ndarray:
    """A lon/lat ring (N, 2) densified and projected to ``crs``; (M, 2) metres.

    Examples
    --------
    >>> xy = project_ring(np.array([[-170.0, -75.0], [-160.0, -75.0], [-160.0, -74.0]]),
    ...                   "EPSG:3031")
    >>> xy.shape, bool(np.all(xy[:, 1] < 0))
    ((97, 2), True)
    """
    from rasterio.warp import transform

    lon, lat = _densify(_unwrap(lonlat[:, 0]), np.asarray(lonlat[:, 1], dtype=float), densify)
    x, y = transform("EPSG:4326", crs, lon.tolist(), lat.tolist())
    return np.column_stack([x, y])


def region_outline(region: Sequence[float], crs: str, *, n: int = 64) -> np.ndarray:
    """The query box (west, south, east, north) projected: edges along meridians and parallels.

    ``west`` > ``east`` is read as a box across the antimeridian.
    """
    w, s, e, n_ = (float(v) for v in region)
    if e < w:
        e += 360.0
    lon = np.array([w, e, e, w])
    lat = np.array([s, s, n_, n_])
    return project_ring(np.column_stack([lon, lat]), crs, densify=n)


def _graticule(ax, crs: str, lon_range: tuple[float, float], lat_range: tuple[float, float]) -> None:
    """Light meridians and parallels over the axes' current view, labelled where they leave it.

    Drawn after the view is fixed; the lines do not change it.
    """
    from rasterio.warp import transform

    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    lo0, lo1 = lon_range
    la0, la1 = max(lat_range[0] - 10, -90), min(lat_range[1] + 10, 90)
    lon_step = 10 if lo1 - lo0 > 20 else 5
    lat_step = 2 if lat_range[1] - lat_range[0] <= 16 else 5
    lons = np.arange(np.floor(lo0 / lon_step) * lon_step - 3 * lon_step, lo1 + 3.5 * lon_step,
                     lon_step)
    lats = np.arange(np.ceil(la0 / lat_step) * lat_step, la1 + 1e-9, lat_step)
    fine_lat = np.linspace(la0, la1, 200)
    fine_lon = np.linspace(lons[0], lons[-1], 400)
    kw = dict(color="0.8", lw=0.5, zorder=0, scalex=False, scaley=False)
    # meridians are labelled where they leave the view equatorward, parallels at their west end
    lines = [(f"{(lo + 180) % 360 - 180:g}°", [lo] * fine_lat.size, fine_lat.tolist(), -1)
             for lo in lons]
    lines += [(f"{la:g}°", fine_lon.tolist(), [la] * fine_lon.size, 0) for la in lats]
    placed: list[tuple[float, float]] = []
    near = 0.06 * max(x1 - x0, y1 - y0)
    for text, lon, lat, end in lines:
        x, y = (np.asarray(v) / 1e3 for v in transform("EPSG:4326", crs, lon, lat))
        ax.plot(x, y, **kw)
        inside = np.flatnonzero((x > x0) & (x < x1) & (y > y0) & (y < y1))
        if not inside.size:
            continue
        south = crs == POLAR_CRS["south"][0]
        i = inside[-1] if end == -1 and south else inside[0]
        if any(abs(x[i] - px) < near and abs(y[i] - py) < near for px, py in placed):
            continue  # no label on top of another
        placed.append((x[i], y[i]))
        u, v = (x[i] - x0) / (x1 - x0), (y[i] - y0) / (y1 - y0)    # keep labels inside the axes
        ha = "left" if u < 0.1 else "right" if u > 0.9 else "center"
        va = "bottom" if v < 0.1 else "top" if v > 0.9 else "center"
        ax.annotate(text, (x[i], y[i]), fontsize=6.5, color="0.35", ha=ha, va=va,
                    annotation_clip=False,
                    bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.8))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


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
        Decides the projection (EPSG:3031 south of the equator, else EPSG:3413) and is drawn.
    n_thumbs : int
    thumb_px : int
        Thumbnail side in pixels.

    Returns
    -------
    matplotlib.figure.Figure
        The first axes holds the footprints (one patch each) and the region outline (a line
        labelled ``query region``) in km of the polar stereographic CRS named in its labels.
    """
    import cv2
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if isinstance(region, dict):
        region = [region["west"], region["south"], region["east"], region["north"]]
    shown = list(records)[:n_thumbs]
    # a pyplot-free Figure: notebooks show the saved PNG once, not a second inline copy
    fig = Figure(figsize=(3.2 * (1 + max(len(shown), 1)), 3.7))
    axes = fig.subplots(1, 1 + max(len(shown), 1), squeeze=False)
    ax = axes[0, 0]
    feet = [(ring, r.name) for r in records for ring in _parse_wkt(r.meta.get("footprint", ""))]
    if region is not None:
        mid_lat = (float(region[1]) + float(region[3])) / 2
    elif feet:
        mid_lat = float(np.mean(np.concatenate([f[:, 1] for f, _ in feet])))
    else:
        mid_lat = None
    if mid_lat is not None:
        crs, crs_name = polar_crs(mid_lat)
        lons = [_unwrap(f[:, 0]) for f, _ in feet]
        lats = [f[:, 1] for f, _ in feet]
        if region is not None:
            w, s, e, n = (float(v) for v in region)
            lons.append(np.array([w, e + 360.0 if e < w else e]))
            lats.append(np.array([s, n]))
        all_lon = np.concatenate([(lo - lons[0][0] + 180) % 360 - 180 + lons[0][0] for lo in lons])
        drawn = []
        if region is not None:
            xy = region_outline(region, crs) / 1e3
            ax.plot(xy[:, 0], xy[:, 1], "k--", lw=1, label="query region")
            drawn.append(xy)
        for ring, _ in feet:
            xy = project_ring(ring, crs) / 1e3
            ax.fill(xy[:, 0], xy[:, 1], alpha=0.5, lw=0.5, ec="tab:blue", fc="tab:blue")
            drawn.append(xy)
        if feet:   # a marker per scene: 20 km scenes are specks on a 1500 km sector
            mid = np.array([d.mean(axis=0) for d in drawn[-len(feet):]])
            ax.plot(mid[:, 0], mid[:, 1], "o", ms=2.5, mfc="none", mec="tab:blue", mew=0.6,
                    label="scenes")
        box = np.concatenate(drawn)
        (bx0, by0), (bx1, by1) = box.min(axis=0), box.max(axis=0)
        pad = 0.08 * max(bx1 - bx0, by1 - by0, 1.0)
        ax.set_xlim(bx0 - pad, bx1 + pad)
        ax.set_ylim(by0 - pad, by1 + pad)
        ax.set_aspect("equal", adjustable="box")
        _graticule(ax, crs, (float(all_lon.min()), float(all_lon.max())),
                   (float(np.concatenate(lats).min()), float(np.concatenate(lats).max())))
        ax.set_xlabel(f"x (km, {crs})", fontsize=8)
        ax.set_ylabel(f"y (km, {crs})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        what = f"{len(feet)} scene footprints" if feet else "footprints"
        ax.set_title(f"{what}\n{crs_name} ({crs})", fontsize=8)
    if not feet:
        ax.text(0.5, 0.5, "no footprints\n(synthetic or\nungeoreferenced scenes)",
                ha="center", va="center", transform=ax.transAxes)
        if mid_lat is None:
            ax.set_title("footprints")
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
