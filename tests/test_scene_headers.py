"""Scenes are refused before they are decoded (issue 19, items 8 and 9).

* A header that claims a huge image (a PNG whose IHDR lies, a sparse 100000 px GeoTIFF) is
  refused from the header alone with one line that names the file, its size and the limit,
  fast and without allocating the image.
* The header probes agree with what the decoders return, for paths and for bytes alike.
* Without rasterio, a TIFF that OpenCV would not read faithfully (16-bit, more bands,
  georeferenced) is refused with the install command, never read as grey band 1.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zlib

import cv2
import numpy as np
import pytest

from seaice_utils.core.budget import (LABEL_BYTES_PER_PIXEL, PREDICT_BYTES_PER_PIXEL,
                                      decode_bytes_per_pixel, scene_bytes)
from seaice_utils.core.png import PNG_SIGNATURE, encode_png
from seaice_utils.core.scenes import (SceneHeader, check_scene_size, header_from_bytes,
                                      read_image, read_scene, scene_header)
from seaice_utils.errors import InputError

GIB = 2**30
LIMIT = 8 * GIB


def chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def lying_png(w: int = 50000, h: int = 50000) -> bytes:
    """A PNG whose IHDR claims ``w`` x ``h`` RGB pixels, with a few bytes of image data."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def with_chunk_before_idat(png: bytes, tag: bytes, data: bytes) -> bytes:
    at = png.index(b"IDAT") - 4
    return png[:at] + chunk(tag, data) + png[at:]


def write_tif(path, bands: np.ndarray, *, geo: bool = False, **profile) -> None:
    """(H, W, C) array as a (Geo)TIFF written by GDAL through rasterio."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import Affine

    h, w, c = bands.shape
    if geo:
        profile.update(crs="EPSG:3031", transform=Affine(10, 0, -1e5, 0, -10, 1e5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", driver=profile.pop("driver", "GTiff"), width=w, height=h,
                           count=c, dtype=str(bands.dtype), **profile) as dst:
            dst.write(np.moveaxis(bands, -1, 0))


def refused_fast(call) -> InputError:
    """Run ``call``; it must raise InputError within a second, allocating under 1 MiB."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(InputError) as err:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 1.0
    assert peak < 2**20, f"allocated {peak} bytes before refusing"
    assert "\n" not in str(err.value)
    return err.value


# ------------------------------------------------------------------ 8: size before decoding
def test_png_with_lying_header_is_refused_before_decoding(tmp_path):
    p = tmp_path / "big.png"
    p.write_bytes(lying_png())
    assert scene_header(p) == SceneHeader(50000, 50000, 3, "uint8", "png")
    err = refused_fast(lambda: read_scene(p, max_bytes=LIMIT))
    need = 50000 * 50000 * LABEL_BYTES_PER_PIXEL / GIB
    assert str(err) == (f"big.png: 50000 x 50000 px (2500 Mpx) would need about {need:.0f} GiB "
                        "to process, over the worker memory limit of 8 GiB "
                        "(global.worker_memory_gb)")
    err = refused_fast(lambda: read_scene(p, max_bytes=LIMIT,
                                          bytes_per_pixel=PREDICT_BYTES_PER_PIXEL))
    assert f"about {50000 * 50000 * PREDICT_BYTES_PER_PIXEL / GIB:.0f} GiB" in str(err)


def test_png_with_lying_header_without_a_limit_is_an_input_error_not_a_cv2_error(tmp_path):
    p = tmp_path / "big.png"
    p.write_bytes(lying_png())
    with pytest.raises(InputError, match=r"cannot read image .*big\.png: OpenCV refused it"):
        read_scene(p)


def test_sparse_100000_px_geotiff_is_refused_before_reading(tmp_path, monkeypatch):
    p = tmp_path / "sparse.tif"
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import Affine

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(p, "w", driver="GTiff", width=100000, height=100000, count=3,
                           dtype="uint16", tiled=True, blockxsize=1024, blockysize=1024,
                           sparse_ok=True, crs="EPSG:3031",
                           transform=Affine(10, 0, 0, 0, -10, 0)):
            pass                                   # no block written: a few kB on disk
    assert p.stat().st_size < 2**20
    header = scene_header(p)
    assert (header.height, header.width, header.bands, header.dtype) == (100000, 100000, 3,
                                                                         "uint16")
    assert header.georeferenced and header_from_bytes(p.read_bytes(), p.name) == header
    message = (r"sparse\.tif: 100000 x 100000 px \(10000 Mpx\) would need about (\d+) GiB to "
               r"process, over the worker memory limit of 8 GiB \(global\.worker_memory_gb\)")
    err = refused_fast(lambda: read_scene(p, max_bytes=LIMIT))
    need = int(re.fullmatch(message, str(err)).group(1))
    assert need == round(scene_bytes(header) / GIB) and need * GIB > 1e10 * 6   # > raw samples
    monkeypatch.setitem(sys.modules, "rasterio", None)      # the size comes first either way
    assert re.fullmatch(message, str(refused_fast(lambda: read_scene(p, max_bytes=LIMIT))))


def test_scene_under_the_limit_is_read(tmp_path):
    img = np.full((40, 50, 3), 90, np.uint8)
    (tmp_path / "ok.png").write_bytes(encode_png(img))
    sc = read_scene(tmp_path / "ok.png", max_bytes=scene_bytes(scene_header(tmp_path / "ok.png")))
    assert sc.rgb.shape == (40, 50, 3)
    with pytest.raises(InputError, match=r"ok\.png: 50 x 40 px \(0\.002 Mpx\) would need about "
                                         r"2\.0 GiB to process, over the worker memory limit of "
                                         r"0\.25 GiB"):
        read_scene(tmp_path / "ok.png", max_bytes=GIB / 4, bytes_per_pixel=2**20)
    with pytest.raises(InputError, match=r"would need about 20 MiB"):
        read_scene(tmp_path / "ok.png", max_bytes=2**20, bytes_per_pixel=10 * 2**10)


def test_check_scene_size_skips_unknown_headers_and_no_limit():
    big = SceneHeader(10**5, 10**5, 3, "uint8")
    check_scene_size(None, "x.bmp", max_bytes=1)            # a format that is not probed
    check_scene_size(big, "x.png", max_bytes=None)          # no limit
    with pytest.raises(InputError, match="over the worker memory limit of 0.25 GiB "
                                         r"\(season.limit\)$"):
        check_scene_size(big, "x.png", max_bytes=GIB / 4, limit_key="season.limit")


def test_reading_16_bit_and_float_costs_more_than_the_work():
    rgb8, u16 = SceneHeader(1, 1, 3, "uint8"), SceneHeader(1, 1, 3, "uint16")
    assert scene_bytes(rgb8) == LABEL_BYTES_PER_PIXEL
    assert scene_bytes(u16) == decode_bytes_per_pixel(u16) > PREDICT_BYTES_PER_PIXEL
    many = SceneHeader(1, 1, 13, "uint16")
    f64 = SceneHeader(1, 1, 3, "float64")
    # measured (core.budget): 47.9, 74.0, 79.5 bytes per pixel; the estimates hold them
    assert 47.9 <= decode_bytes_per_pixel(u16) < 47.9 * 1.25
    assert 74.0 <= decode_bytes_per_pixel(many) < 74.0 * 1.25
    assert 79.5 <= decode_bytes_per_pixel(f64) < 79.5 * 1.35


# ------------------------------------------------------------------ probes agree with decoders
def _png_files():
    rng = np.random.default_rng(7)
    rgb = rng.integers(1, 255, (24, 36, 3), dtype=np.uint8)
    pal = encode_png(rgb[..., 0] % 4, palette=np.array([[0, 0, 0], [9, 9, 9], [90, 0, 0],
                                                        [0, 90, 0]], np.uint8))
    files = {
        "rgb.png": encode_png(rgb),
        "grey.png": encode_png(rgb[..., 0]),
        "palette.png": pal,
        "palette_trns.png": with_chunk_before_idat(pal, b"tRNS", b"\x00"),
        "rgb_trns.png": with_chunk_before_idat(encode_png(rgb), b"tRNS",
                                               b"\x00\x01\x00\x02\x00\x03"),
    }
    for name, arr in (("rgba.png", np.dstack([rgb, rgb[..., :1]])),
                      ("rgb16.png", rgb.astype(np.uint16) * 257),
                      ("grey16.png", rgb[..., 0].astype(np.uint16) * 257),
                      ("colour.jpg", rgb), ("grey.jpg", rgb[..., 0])):
        flags = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if name == "grey.jpg" else []
        files[name] = cv2.imencode("." + name.split(".")[1], arr, flags)[1].tobytes()
    return files


def _tif_files(tmp_path):
    rng = np.random.default_rng(8)
    u16 = rng.integers(1, 10000, (24, 36, 3), dtype=np.uint16)
    write_tif(tmp_path / "dn.tif", u16)
    write_tif(tmp_path / "geo.tif", u16, geo=True, tiled=True, blockxsize=16, blockysize=16)
    write_tif(tmp_path / "refl.tif", (u16 / 10000).astype(np.float32), geo=True)
    write_tif(tmp_path / "stack13.tif", rng.integers(1, 10000, (24, 36, 13), dtype=np.uint16))
    write_tif(tmp_path / "big.tif", u16, BIGTIFF="YES", interleave="band")
    write_tif(tmp_path / "rgb8.tif", u16.astype(np.uint8), geo=True, photometric="RGB")
    write_tif(tmp_path / "s2.jp2", u16, geo=True, driver="JP2OpenJPEG")
    cv2.imwrite(str(tmp_path / "opencv8.tif"), u16.astype(np.uint8))
    cv2.imwrite(str(tmp_path / "opencv16.tif"), u16)
    return sorted(p.name for p in tmp_path.iterdir())


def test_header_probes_agree_with_decoded_images(tmp_path):
    for name, data in _png_files().items():
        (tmp_path / name).write_bytes(data)
    names = _png_files().keys() | set(_tif_files(tmp_path))
    assert len(names) == 19
    for name in sorted(names):
        p = tmp_path / name
        header = scene_header(p)
        arr, meta = read_image(p)
        bands = arr.shape[2] if arr.ndim == 3 else 1
        assert (header.height, header.width, header.bands, header.dtype) == (
            arr.shape[0], arr.shape[1], bands, str(arr.dtype)), name
        assert header_from_bytes(p.read_bytes(), name) == header, name
        assert header.georeferenced == ("crs" in meta), name
        assert header.format == {"tif": "tiff", "jpg": "jpeg"}.get(p.suffix[1:], p.suffix[1:])


def test_unknown_or_broken_headers_give_none_and_never_raise(tmp_path):
    bmp = cv2.imencode(".bmp", np.zeros((4, 4, 3), np.uint8))[1].tobytes()
    for data in (bmp, b"", b"not an image at all", PNG_SIGNATURE + b"\x00\x00", b"II*\x00",
                 b"\xff\xd8\xff\xd9", b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        assert header_from_bytes(data, "x") is None
    tifs = set(_tif_files(tmp_path))
    samples = [(tmp_path / n).read_bytes()[:4096] for n in sorted(tifs)]
    samples += [d[:4096] for d in _png_files().values()]
    rng = np.random.default_rng(3)
    for data in samples:
        for n in range(0, 300, 7):                       # cut short anywhere
            h = header_from_bytes(data[:n])
            assert h is None or isinstance(h, SceneHeader)
        for _ in range(40):                              # bytes of the header damaged
            bad = bytearray(data)
            for i in rng.integers(0, min(len(bad), 200), 4):
                bad[i] = int(rng.integers(0, 256))
            h = header_from_bytes(bytes(bad))
            assert h is None or isinstance(h, SceneHeader)


# ------------------------------------------------------------------ 9: no silent grey reads
def test_without_rasterio_tiffs_opencv_would_misread_are_refused(tmp_path, monkeypatch):
    rng = np.random.default_rng(9)
    u16 = rng.integers(1, 10000, (24, 36, 3), dtype=np.uint16)
    write_tif(tmp_path / "dn.tif", u16)                              # GDAL: minisblack + extra
    write_tif(tmp_path / "geo8.tif", u16.astype(np.uint8), geo=True, photometric="RGB")
    write_tif(tmp_path / "four.tif", u16.astype(np.uint8)[..., [0, 1, 2, 0]],
              photometric="MINISBLACK")                             # 4 bands, no alpha
    cv2.imwrite(str(tmp_path / "opencv16.tif"), u16)
    cv2.imwrite(str(tmp_path / "plain.tif"), u16.astype(np.uint8))
    cv2.imwrite(str(tmp_path / "world.tif"), u16.astype(np.uint8))
    (tmp_path / "world.tfw").write_text("10\n0\n0\n-10\n0\n0\n")
    with_rasterio = read_scene(tmp_path / "plain.tif")
    monkeypatch.setitem(sys.modules, "rasterio", None)
    for name, why in (("dn.tif", "3 bands of uint16"), ("opencv16.tif", "3 bands of uint16"),
                      ("geo8.tif", "georeferenced (GeoTIFF tags ModelPixelScale, "
                                   "ModelTiepoint, GeoKeyDirectory)"),
                      ("four.tif", "4 bands that are not RGB + alpha"),
                      ("world.tif", "georeferenced by world.tfw beside it")):
        with pytest.raises(InputError) as err:
            read_scene(tmp_path / name)
        msg = str(err.value)
        assert msg.startswith(f"{name}: {why}") and "\n" not in msg, msg
        assert msg.endswith('pip install "seaice-utils[geo]" (or pip install rasterio)'), msg
    plain = read_scene(tmp_path / "plain.tif")              # 8-bit RGB: OpenCV reads it right
    assert np.array_equal(plain.rgb, with_rasterio.rgb) and plain.meta["bands_rgb"] == [1, 2, 3]


def test_label_command_without_rasterio_refuses_a_16_bit_geotiff(tmp_path):
    rng = np.random.default_rng(10)
    write_tif(tmp_path / "dn16.tif", rng.integers(1, 10000, (32, 32, 3), dtype=np.uint16),
              geo=True)
    code = ("import sys; sys.modules['rasterio'] = None\n"
            "from seaice_utils.cli import main\n"
            f"sys.exit(main(['label', {str(tmp_path / 'dn16.tif')!r}, "
            f"{str(tmp_path / 'out')!r}, '--no-filter', '--no-progress']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "dn16.tif: 3 bands of uint16" in out and 'pip install "seaice-utils[geo]"' in out
    sidecar = tmp_path / "out" / "dn16.json"
    assert not sidecar.exists() or json.loads(sidecar.read_text())["bands_rgb"] != [1, 1, 1]
