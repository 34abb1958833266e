"""A full Sentinel-2 tile (10980 x 10980 px, 16-bit, 3 bands): labelling in bands of rows against
the whole-scene path and the tile pipeline, both sides in one run.

Run from the project folder::

    .venv/bin/python tests/benchmarks/bench_fulltile.py [--size 10980] [--seed 0] [--root DIR]
        [--skip-whole] [--workers 2]

The tile is seeded and synthetic: a mosaic of synthetic scenes
(:func:`seaice_utils.data.synthetic.synthesize_scene`, 2048 px, haze and shadow in some) as
16-bit reflectance x 10000, an EPSG:3031 deflate-tiled GeoTIFF written strip by strip. Each side
runs in a fresh Python process that reports its wall time and peak resident memory (its own, and
the largest of its worker processes):

* ``whole``: the scene read whole (``read_scene``), labelled (``auto_label``), encoded and
  published: the path every TIFF took before bands (``--skip-whole`` leaves it out);
* ``bands``: ``seaice label TILE OUT`` (read, filter and write in bands of rows);
* ``tiles``: the project's tile pipeline on the same pixels: the tile's 8-bit RGB cut into
  256 px PNG tiles, ``seaice label`` over a sample of them, the time per tile times the tiles of
  the scene (decode and write included);
* ``2 x bands``: ``seaice label`` over two such tiles with ``--workers 2``.

The class maps of ``whole`` and ``bands`` are compared byte for byte.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r'''
import json, resource, sys, time
t0 = time.perf_counter()
side, args = sys.argv[1], json.loads(sys.argv[2])
if side == "whole":
    from pathlib import Path
    from seaice_utils.core.scenes import read_scene
    from seaice_utils.labelling.autolabel import auto_label
    from seaice_utils.labelling.pipeline import LabelOptions, encode_outputs, write_outputs
    sc = read_scene(args["tile"])
    classes = auto_label(sc.rgb, nodata=sc.nodata)[0]
    write_outputs(args["out"], sc.name, encode_outputs(sc, classes, LabelOptions(),
                                                       input_name=Path(args["tile"]).name))
    rc = 0
elif side == "predict whole":
    from pathlib import Path
    from seaice_utils.core.scenes import read_scene
    from seaice_utils.inference.model import load_model, model_input
    from seaice_utils.inference.predict import predict_options
    from seaice_utils.params import load_params
    from seaice_utils.inference.runtime import make_predict_fn
    from seaice_utils.inference.stitch import predict_scene
    from seaice_utils.engines.scene_outputs import encode_class_maps
    model, settings = load_model(args["model"])
    opts = predict_options(load_params("quick"))
    predict = make_predict_fn(model, runtime=opts.runtime, batch_size=opts.batch_size)
    sc = read_scene(args["tile"])
    x = model_input(sc.rgb, kind=settings.input, nodata=sc.nodata, filter_params=opts.filter_params)
    classes = predict_scene(predict, x, nodata=sc.nodata, tile=settings.tile_size, overlap=opts.overlap,
                            batch_size=opts.batch_size, blend=opts.blend, border=opts.border)
    Path(args["out"]).mkdir(parents=True, exist_ok=True)
    enc = encode_class_maps(classes, crs=sc.meta["crs"], transform=sc.meta["transform"])
    (Path(args["out"]) / (Path(args["tile"]).stem + "_classes.tif")).write_bytes(enc["geotiff"])
    rc = 0
else:
    from seaice_utils.cli import main
    rc = main(args["argv"])
self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
kids_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"rc": rc, "seconds": time.perf_counter() - t0, "peak_mb": self_mb,
                  "worker_peak_mb": kids_mb}))
'''


def make_tile(path: Path, size: int, seed: int) -> None:
    """The seeded synthetic tile, written strip by strip (never whole in memory)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from seaice_utils.data.synthetic import synthesize_scene

    block = 2048
    n = -(-size // block)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3,
                       dtype="uint16", crs="EPSG:3031", tiled=True, blockxsize=512,
                       blockysize=512, compress="deflate",
                       transform=from_origin(-500000, -1200000, 10, 10)) as dst:
        for i in range(n):
            rows = min(block, size - i * block)
            strip = np.zeros((rows, size, 3), np.uint16)
            for j in range(n):
                img = synthesize_scene(seed * 1000 + i * n + j, size=block).image
                if (i + j) % 2:
                    img = img[:, ::-1]
                cols = min(block, size - j * block)
                strip[:, j * block:j * block + cols] = (
                    img[:rows, :cols].astype(np.float32) / 255 * 10000).astype(np.uint16)
            dst.write(np.moveaxis(strip, -1, 0), window=Window(0, i * block, size, rows))


def cut_tiles(tile: Path, folder: Path, n: int) -> int:
    """The first ``n`` 256 px tiles of the scene's 8-bit RGB as PNGs; returns the scene's tile
    count."""
    from seaice_utils.core.blocks import open_bands
    from seaice_utils.core.scenes import write_png

    folder.mkdir(parents=True, exist_ok=True)
    with open_bands(tile) as src:
        h, w = src.shape
        per_row = w // 256
        rows_needed = -(-n // per_row) * 256
        rgb, _ = src.rows(0, min(h, rows_needed))
    k = 0
    for r in range(0, rgb.shape[0] - 255, 256):
        for c in range(0, w - 255, 256):
            if k == n:
                return (h // 256) * (w // 256)
            write_png(folder / f"tile_{r // 256:03d}_{c // 256:03d}.png", rgb[r:r + 256, c:c + 256])
            k += 1
    return (h // 256) * (w // 256)


def run(side: str, **args) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, side, json.dumps(args)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{side} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=10980)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--sample-tiles", type=int, default=200)
    ap.add_argument("--skip-whole", action="store_true")
    ap.add_argument("--skip-two", action="store_true")
    ap.add_argument("--model", help="a trained U-Net (.keras): also time seaice predict on the "
                    "tile, from bands and whole (the quick profile's inference settings)")
    ap.add_argument("--skip-label", action="store_true")
    a = ap.parse_args()
    root = Path(a.root or tempfile.mkdtemp(prefix="seaice-fulltile-"))
    root.mkdir(parents=True, exist_ok=True)
    tile = root / f"tile_{a.size}_{a.seed}.tif"
    if not tile.is_file():
        t0 = time.perf_counter()
        make_tile(tile, a.size, a.seed)
        print(f"made {tile} ({tile.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t0:.0f} s")
    mpx = a.size * a.size / 1e6
    res = {}
    if a.model:
        res["predict bands"] = run("predict bands", argv=[
            "predict", a.model, str(tile), str(root / "pbands"), "-q", "--overwrite",
            "--params", "quick"])
        if not a.skip_whole:
            res["predict whole"] = run("predict whole", tile=str(tile), model=a.model,
                                       out=str(root / "pwhole"))
        same = ((root / "pbands" / f"{tile.stem}_classes.tif").read_bytes()
                == (root / "pwhole" / f"{tile.stem}_classes.tif").read_bytes()
                if not a.skip_whole else None)
        for side in ("predict bands", "predict whole"):
            if side in res:
                r = res[side]
                print(f"{side:<14} {r['seconds']:8.1f} s {r['peak_mb']:8.0f} MB")
        print(f"predicted class maps of bands and whole byte-identical: {same}")
    if a.skip_label:
        return
    res["bands"] = run("bands", argv=["label", str(tile), str(root / "bands"), "-q",
                                      "--overwrite"])
    if not a.skip_whole:
        res["whole"] = run("whole", tile=str(tile), out=str(root / "whole"))
    tiles = root / "tiles"
    n_tiles = cut_tiles(tile, tiles, a.sample_tiles)
    t = run("tiles", argv=["label", str(tiles), str(root / "tiles_out"), "-q", "--overwrite"])
    per_tile = t["seconds"] / a.sample_tiles
    res["tiles"] = {**t, "seconds": per_tile * n_tiles, "measured_tiles": a.sample_tiles}
    if not a.skip_two:
        two = root / "two"
        two.mkdir(exist_ok=True)
        for k in (1, 2):
            dst = two / f"tile_{k}.tif"
            if not dst.exists():
                dst.symlink_to(tile)
        res["2 x bands"] = run("2 x bands", argv=["label", str(two), str(root / "two_out"), "-q",
                                                  "--engine", "multiprocessing", "--workers", "2",
                                                  "--overwrite"])
    print(f"\n{a.size} x {a.size} px ({mpx:.0f} Mpx), 16-bit RGB GeoTIFF, one worker unless said")
    print(f"{'side':<12} {'wall s':>8} {'peak MB':>9} {'worker MB':>10}  note")
    for side, r in res.items():
        note = ""
        if side == "tiles":
            note = (f"{r['measured_tiles']} of {n_tiles} tiles timed "
                    f"({1000 * per_tile:.1f} ms a tile), extrapolated")
        if side == "bands":
            note = f"{r['seconds'] / res['tiles']['seconds']:.2f} x the tile pipeline"
        if side == "whole":
            note = f"{r['seconds'] / res['tiles']['seconds']:.2f} x the tile pipeline"
        if side == "2 x bands":
            note = (f"2 tiles: {2 * res['bands']['seconds'] / r['seconds']:.2f} x one worker's "
                    "throughput")
        print(f"{side:<12} {r['seconds']:8.1f} {r['peak_mb']:9.0f} {r['worker_peak_mb']:10.0f}"
              f"  {note}")
    if "whole" in res:
        made = [s for s in ("_classes.png", "_labels.png", "_classes.tif", "_preview.png")
                if (root / "whole" / f"{tile.stem}{s}").is_file()]
        same = all((root / "bands" / f"{tile.stem}{s}").read_bytes()
                   == (root / "whole" / f"{tile.stem}{s}").read_bytes() for s in made)
        print(f"outputs of bands and whole ({', '.join(made)}) byte-identical: {same}")


if __name__ == "__main__":
    main()
