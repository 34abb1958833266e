"""Peak memory per pixel of labelling, prediction and reading: the constants of
:mod:`seaice_utils.core.budget`, measured again.

Run from the project folder::

    .venv/bin/python tests/benchmarks/bench_memory.py [--size 4096] [--seed 0] [--cloud 0.3]

Each measurement runs in a fresh Python process (Linux only): the imports and one run on a tiny
image first, then the peak resident memory is reset (``/proc/self/clear_refs``) and the work
runs once on the scene; ``VmHWM - VmRSS`` at the reset, divided by the scene's pixels, is
printed in bytes per pixel. The scene is a synthetic one
(:func:`seaice_utils.data.synthetic.synthesize_scene`) as an 8-bit RGB PNG, and as GeoTIFFs of
3 bands uint16, float32 and float64 and of 13 bands uint16 (read with ``bands=(4, 3, 2)``).
Prediction uses a stand-in NumPy model (thresholds on the first channel), so the model's own
memory, which does not grow with the scene, is left out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

CHILD = r'''
import gc, json, sys
import cv2
import numpy as np
from seaice_utils.core.classes import to_palette
from seaice_utils.core.png import encode_png
from seaice_utils.core.scenes import read_scene
from seaice_utils.labelling.pipeline import LabelOptions, label_file


def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024


def fake(x):
    g = x[..., 0]
    return np.stack([g < 0.3, (g >= 0.3) & (g < 0.7), g >= 0.7], -1).astype(np.float32)


def predict(path, kind):
    from seaice_utils.inference.model import model_input
    from seaice_utils.inference.stitch import predict_scene

    scene = read_scene(path)
    x = model_input(scene.rgb, kind=kind, nodata=scene.nodata)
    classes = predict_scene(fake, x, nodata=scene.nodata, tile=256, overlap=32, batch_size=2)
    encode_png(classes), encode_png(to_palette(classes))


mode, path, out = sys.argv[1:4]
bands = tuple(json.loads(sys.argv[4])) if len(sys.argv) > 4 else None
work = {
    "label": lambda p: label_file(p, f"{out}/labels"),
    "label_nofilter": lambda p: label_file(p, f"{out}/labels",
                                           LabelOptions(filter_params=None)),
    "predict_filtered": lambda p: predict(p, "filtered"),
    "predict_rgb": lambda p: predict(p, "rgb"),
    "read": lambda p: read_scene(p, bands=bands),
}[mode]
tiny = f"{out}/tiny.png"
cv2.imwrite(tiny, np.full((300, 300, 3), 120, np.uint8))
(read_scene if mode == "read" else work)(tiny)   # lazy imports and caches: baseline
gc.collect()
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")                            # peak RSS := current RSS
base = status("VmRSS")
work(path)
print(json.dumps({"base": base, "peak": status("VmHWM")}))
'''


def measure(mode: str, path: Path, out: Path, *extra: str) -> float:
    r = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), str(out), *extra],
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{mode} {path.name} failed:\n{r.stderr[-3000:]}")
    m = json.loads(r.stdout.strip().splitlines()[-1])
    return m["peak"] - m["base"]


def write_tif(path: Path, rgb: np.ndarray, dtype: str, count: int) -> None:
    import rasterio

    arr = np.zeros((count, *rgb.shape[:2]), dtype)
    for i in range(count):
        v = rgb[..., i % 3].astype(np.float64) / 255
        arr[i] = (v * 10000).astype(dtype) if dtype == "uint16" else v.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", driver="GTiff", width=rgb.shape[1], height=rgb.shape[0],
                           count=count, dtype=dtype) as dst:
            dst.write(arr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cloud", type=float, default=0.3)
    args = ap.parse_args(argv)

    import cv2

    from seaice_utils.core.budget import (LABEL_BYTES_PER_PIXEL, PREDICT_BYTES_PER_PIXEL,
                                          decode_bytes_per_pixel)
    from seaice_utils.core.headers import SceneHeader
    from seaice_utils.data.synthetic import synthesize_scene

    tmp = Path(tempfile.mkdtemp(prefix="seaice-bench-memory-"))
    rgb = synthesize_scene(args.seed, size=args.size, cloud_cover=args.cloud).image
    cv2.imwrite(str(tmp / "scene.png"), rgb[..., ::-1])
    px = rgb.shape[0] * rgb.shape[1]
    rows = []
    for mode, constant in (("label", LABEL_BYTES_PER_PIXEL), ("label_nofilter", None),
                           ("predict_filtered", PREDICT_BYTES_PER_PIXEL),
                           ("predict_rgb", PREDICT_BYTES_PER_PIXEL)):
        rows.append((mode, measure(mode, tmp / "scene.png", tmp) / px, constant))
    rows.append(("read png 3 x uint8", measure("read", tmp / "scene.png", tmp) / px,
                 decode_bytes_per_pixel(SceneHeader(1, 1, 3, "uint8"))))
    for dtype, count in (("uint16", 3), ("float32", 3), ("float64", 3), ("uint16", 13)):
        path = tmp / f"{dtype}x{count}.tif"
        write_tif(path, rgb, dtype, count)
        extra = [json.dumps([4, 3, 2])] if count > 3 else []
        rows.append((f"read tif {count} x {dtype}", measure("read", path, tmp, *extra) / px,
                     decode_bytes_per_pixel(SceneHeader(1, 1, count, dtype))))
        path.unlink()
    print(f"{args.size} x {args.size} px, seed {args.seed}, cloud cover {args.cloud}")
    print(f"{'work':<24}{'measured B/px':>14}{'constant':>10}")
    for mode, bpp, constant in rows:
        print(f"{mode:<24}{bpp:>14.2f}{'' if constant is None else constant:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
