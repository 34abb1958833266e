"""What an image file holds, read from its header alone: size, bands, sample type, georeference.

:func:`scene_header` (a path) and :func:`header_from_bytes` (a file's bytes, as Spark's
``binaryFile`` source gives them) read a few hundred bytes of the header and never decode pixels,
so that a scene too big for a worker is refused before anything is allocated
(:func:`seaice_utils.core.budget.check_scene_size`). Both parse the same header the same way (one
parser reads through a path or through bytes), so they agree, with one exception: a world file
or ``.aux.xml`` beside a path marks it georeferenced, and bytes have nothing beside them.

Formats probed, told by their magic bytes as the decoders tell them (never by the suffix):

* **PNG**: the IHDR chunk (and a ``tRNS`` chunk before the image data, which OpenCV turns into
  a fourth, alpha, band);
* **TIFF** and BigTIFF: the first IFD (size, samples per pixel, bits and sample format,
  photometric interpretation, extra samples, GeoTIFF tags);
* **JPEG**: the first start-of-frame segment;
* **JPEG 2000** (JP2 boxes or a bare J2K codestream): the ``ihdr`` box or the SIZ marker, and
  the GeoJP2 / GMLJP2 boxes.

Any other format (BMP, WebP, ...), and a header that is cut short or does not parse, gives None:
"unknown", and no size check is made for it (the decoder then says what is wrong with a broken
file). The size is the image's: a JPEG whose height is only given after the data (a DNL marker)
is unknown too.

Examples
--------
>>> from seaice_utils.core.png import encode_png
>>> import numpy as np
>>> header_from_bytes(encode_png(np.zeros((20, 30, 3), np.uint8)), "a.png")
SceneHeader(height=20, width=30, bands=3, dtype='uint8', format='png', georeferenced=False, \
needs_rasterio='')
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from seaice_utils.core.png import PNG_SIGNATURE

__all__ = ["SceneHeader", "scene_header", "header_from_bytes", "GEOTIFF_TAGS", "WORLD_FILES"]

#: TIFF tags that georeference a GeoTIFF: ModelPixelScale, ModelTiepoint, ModelTransformation,
#: GeoKeyDirectory.
GEOTIFF_TAGS = {33550: "ModelPixelScale", 33922: "ModelTiepoint",
                34264: "ModelTransformation", 34735: "GeoKeyDirectory"}
#: World files beside ``<stem>.tif`` / ``<stem>.jp2`` that georeference it for GDAL (rasterio);
#: ``<name>.aux.xml`` does too when it holds a GeoTransform or SRS.
WORLD_FILES = (".tfw", ".tifw", ".tiffw", ".j2w", ".jp2w", ".wld")

_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_J2K_SIGNATURE = b"\xff\x4f\xff\x51"
_GEOJP2_UUID = bytes.fromhex("b14bf8bd083d4b43a5ae8cd7d5a6ce03")
#: At most this many chunks, segments, boxes or IFD entries are looked at (a damaged file can
#: claim anything; the probe stays cheap).
_MAX_STEPS = 4096

Reader = Callable[[int, int], bytes]


@dataclass(frozen=True)
class SceneHeader:
    """Size and sample layout of an image file, as its header says.

    Attributes
    ----------
    height, width : int
        Pixels.
    bands : int
        Bands the file's decoder returns: samples per pixel for TIFF and JPEG 2000 (rasterio
        reads those); for PNG 1 (grey), 3 (RGB, or a palette) or 4 (with alpha, or a palette or
        RGB image with a ``tRNS`` chunk, as OpenCV decodes them); for JPEG 1 or 3.
    dtype : str
        NumPy name of one sample (``"uint8"``, ``"uint16"``, ``"float32"``, ...); samples of
        fewer than 8 bits are decoded to ``uint8``.
    format : str
        ``"png"``, ``"tiff"``, ``"jpeg"`` or ``"jp2"``.
    georeferenced : bool
        GeoTIFF tags, GeoJP2 or GMLJP2 boxes in the file, or a world file beside it.
    needs_rasterio : str
        Why OpenCV (the reader without rasterio) would not read the file faithfully, e.g.
        ``"3 bands of uint16"``; empty when it would.
    """

    height: int
    width: int
    bands: int
    dtype: str
    format: str = "unknown"
    georeferenced: bool = False
    needs_rasterio: str = ""

    @property
    def pixels(self) -> int:
        return self.height * self.width


def header_from_bytes(data: bytes, filename: str = "") -> SceneHeader | None:
    """:func:`scene_header` of a file's bytes (None: a format or header that is not probed).

    ``filename`` is the file's name; the format is told by the magic bytes, not by its suffix,
    as the decoders tell it (a PNG named ``.tif`` is a PNG to OpenCV).
    """
    view = memoryview(data)
    return _probe(lambda offset, n: bytes(view[offset:offset + n]) if offset >= 0 else b"")


def scene_header(path: str | os.PathLike) -> SceneHeader | None:
    """Size, bands and sample type of an image file, from its header alone (module docstring).

    Returns None for a format that is not probed or a header that does not parse ("unknown":
    no size check). A TIFF or JPEG 2000 file with a world file or ``.aux.xml`` beside it is
    ``georeferenced`` (GDAL reads those).

    Raises
    ------
    OSError
        The file cannot be opened.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        def read(offset: int, n: int) -> bytes:
            try:
                fh.seek(offset)
                return fh.read(n)
            except (OSError, OverflowError, ValueError):    # an offset beyond any file
                return b""

        header = _probe(read)
    if header is not None and header.format in ("tiff", "jp2") and not header.georeferenced:
        beside = _world_file(path)
        if beside:
            header = _with_reasons(replace(header, georeferenced=True),
                                   [header.needs_rasterio, f"georeferenced by {beside} beside it"])
    return header


def _world_file(path: Path) -> str:
    """Name of a file beside ``path`` that georeferences it for GDAL ('' when none)."""
    for name in [path.stem + s for s in WORLD_FILES] + [path.name + ".aux.xml"]:
        beside = path.parent / name
        if not beside.is_file():
            continue
        if name.endswith(".aux.xml"):        # often statistics only: look for a georeference
            try:
                text = beside.read_bytes()[:1 << 20]
            except OSError:
                continue
            if b"GeoTransform" not in text and b"<SRS" not in text:
                continue
        return name
    return ""


def _probe(read: Reader) -> SceneHeader | None:
    head = read(0, 16)
    try:
        if head.startswith(PNG_SIGNATURE):
            return _png(read)
        if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _tiff(read)
        if head.startswith(b"\xff\xd8\xff"):
            return _jpeg(read)
        if head.startswith(_JP2_SIGNATURE):
            return _jp2(read)
        if head.startswith(_J2K_SIGNATURE):
            return _j2k(read, 0, [])
    except (struct.error, ValueError, IndexError, OverflowError):
        return None
    return None


def _valid(h: int, w: int, bands: int) -> bool:
    return h >= 1 and w >= 1 and bands >= 1


# ------------------------------------------------------------------------------------- PNG
def _png(read: Reader) -> SceneHeader | None:
    ihdr = read(8, 8 + 13)
    if len(ihdr) < 21 or ihdr[4:8] != b"IHDR":
        return None
    w, h, depth, colour = struct.unpack(">IIBB", ihdr[8:18])
    bands = {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}.get(colour)
    if bands is None or depth not in (1, 2, 4, 8, 16) or not _valid(h, w, bands):
        return None
    if colour in (2, 3):           # a tRNS chunk before the image data: OpenCV adds alpha
        pos = 8
        for _ in range(_MAX_STEPS):
            chunk = read(pos, 8)
            if len(chunk) < 8:
                break
            length, tag = struct.unpack(">I", chunk[:4])[0], chunk[4:8]
            if tag in (b"IDAT", b"IEND"):
                break
            if tag == b"tRNS":
                bands = 4
                break
            pos += 12 + length
    return SceneHeader(h, w, bands, "uint16" if depth == 16 else "uint8", "png")


# ------------------------------------------------------------------------------------ TIFF
#: TIFF field types: (struct code, size).
_TIFF_TYPES = {1: ("B", 1), 2: ("B", 1), 3: ("H", 2), 4: ("I", 4), 5: ("II", 8), 6: ("b", 1),
               7: ("B", 1), 8: ("h", 2), 9: ("i", 4), 10: ("ii", 8), 11: ("f", 4), 12: ("d", 8),
               13: ("I", 4), 16: ("Q", 8), 17: ("q", 8), 18: ("Q", 8)}
_TIFF_WANTED = {256, 257, 258, 262, 277, 338, 339}
_SAMPLE_KINDS = {1: "uint", 2: "int", 3: "float", 4: "uint", 5: "complexint", 6: "complex"}
_NUMPY_TYPES = {"uint8", "int8", "uint16", "int16", "float16", "uint32", "int32", "float32",
                "uint64", "int64", "float64", "complex64", "complex128"}


def _tiff(read: Reader) -> SceneHeader | None:
    head = read(0, 16)
    order = "<" if head[:2] == b"II" else ">"
    (version,) = struct.unpack(order + "H", head[2:4])
    big = version == 43
    if big:
        offset_size, _ = struct.unpack(order + "HH", head[4:8])
        if offset_size != 8:
            return None
        (ifd,) = struct.unpack(order + "Q", head[8:16])
        count_fmt, entry_size, inline = "Q", 20, 8
    else:
        (ifd,) = struct.unpack(order + "I", head[4:8])
        count_fmt, entry_size, inline = "H", 12, 4
    raw = read(ifd, struct.calcsize(count_fmt))
    (n,) = struct.unpack(order + count_fmt, raw)
    if not 1 <= n <= _MAX_STEPS:
        return None
    entries = read(ifd + len(raw), n * entry_size)
    if len(entries) < n * entry_size:
        return None
    tags: dict[int, tuple[int, ...]] = {}
    geo = []
    for i in range(n):
        e = entries[i * entry_size:(i + 1) * entry_size]
        tag, ftype = struct.unpack(order + "HH", e[:4])
        if tag in GEOTIFF_TAGS:
            geo.append(GEOTIFF_TAGS[tag])
        if tag not in _TIFF_WANTED or ftype not in _TIFF_TYPES:
            continue
        (count,) = struct.unpack(order + ("Q" if big else "I"), e[4:4 + (8 if big else 4)])
        code, size = _TIFF_TYPES[ftype]
        if not 1 <= count <= _MAX_STEPS:
            continue
        value = e[entry_size - inline:]
        if count * size > inline:
            (at,) = struct.unpack(order + ("Q" if big else "I"), value)
            value = read(at, count * size)
        if len(value) < count * size:
            return None
        tags[tag] = struct.unpack(order + code * count, value[:count * size])
    if 256 not in tags or 257 not in tags:
        return None
    w, h = tags[256][0], tags[257][0]
    spp = tags.get(277, (1,))[0]
    bits = tags.get(258, (1,))
    formats = tags.get(339, (1,))
    depth = max(bits)
    kind = _SAMPLE_KINDS.get(formats[0], "uint")
    if depth < 8:
        dtype = "uint8"
    elif kind.startswith("complex"):
        dtype = f"complex{2 * depth}"
    else:
        dtype = f"{kind}{depth}"
    if not _valid(h, w, spp) or dtype not in _NUMPY_TYPES:
        return None
    header = SceneHeader(h, w, spp, dtype, "tiff", bool(geo))
    reasons = []
    if len(set(bits)) > 1:
        reasons.append(f"bands of different bit depths ({', '.join(map(str, bits))})")
    elif dtype != "uint8" or depth < 8:
        reasons.append(f"{_bands(spp)} of {dtype if depth >= 8 else f'{depth}-bit samples'}")
    photometric = tags.get(262, (1,))[0]
    alpha = tags.get(338, (0,))[0] in (1, 2)
    if not reasons and not ((spp == 1 and photometric in (1, 3))
                            or (spp == 3 and photometric in (2, 6))
                            or (spp == 4 and photometric == 2 and alpha)):
        what = {1: "grey or palette", 3: "RGB"}.get(spp, "RGB + alpha" if spp == 4 else
                                                      "grey, RGB or RGBA")
        reasons.append(f"{_bands(spp)} that are not {what} (photometric {photometric}"
                       f"{', no alpha band' if spp == 4 and not alpha else ''})")
    if geo:
        reasons.append(f"georeferenced (GeoTIFF tags {', '.join(geo)})")
    return _with_reasons(header, reasons)


def _bands(n: int) -> str:
    return "1 band" if n == 1 else f"{n} bands"


def _with_reasons(header: SceneHeader, reasons: list[str]) -> SceneHeader:
    return replace(header, needs_rasterio="; ".join(r for r in reasons if r))


# ------------------------------------------------------------------------------------ JPEG
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(read: Reader) -> SceneHeader | None:
    pos = 2
    for _ in range(_MAX_STEPS):
        mark = read(pos, 4)
        if len(mark) < 4 or mark[0] != 0xFF:
            return None
        code = mark[1]
        if code == 0xFF:                    # fill byte
            pos += 1
            continue
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", mark[2:4])
        if code in _SOF:
            seg = read(pos + 4, 6)
            if len(seg) < 6:
                return None
            precision, h, w, comps = struct.unpack(">BHHB", seg)
            bands = 1 if comps == 1 else 3          # OpenCV: grey, or colour (CMYK too) as BGR
            if not _valid(h, w, comps):
                return None
            return SceneHeader(h, w, bands, "uint8" if precision <= 8 else "uint16", "jpeg")
        if code in (0xD9, 0xDA) or length < 2:      # end of image, or scan data: no frame
            return None
        pos += 2 + length
    return None


# ------------------------------------------------------------------------------- JPEG 2000
def _boxes(read: Reader, start: int, end: int | None):
    """(type, payload offset, payload end) of the boxes from ``start`` (to ``end``)."""
    pos = start
    for _ in range(_MAX_STEPS):
        if end is not None and pos + 8 > end:
            return
        head = read(pos, 16)
        if len(head) < 8:
            return
        length, kind = struct.unpack(">I", head[:4])[0], head[4:8]
        body = pos + 8
        if length == 1:
            if len(head) < 16:
                return
            (length,) = struct.unpack(">Q", head[8:16])
            body = pos + 16
        stop = end if length == 0 else pos + length
        yield kind, body, stop
        if stop is None or stop <= pos:
            return
        pos = stop


def _jp2(read: Reader) -> SceneHeader | None:
    ihdr = code = None
    geo: list[str] = []
    for kind, body, stop in _boxes(read, 0, None):
        if kind == b"jp2h":
            for sub, sbody, _ in _boxes(read, body, stop):
                if sub == b"ihdr":
                    ihdr = read(sbody, 11)
        elif kind == b"uuid" and read(body, 16) == _GEOJP2_UUID:
            geo.append("GeoJP2")
        elif kind == b"asoc" and b"gml" in read(body, 64).lower():
            geo.append("GMLJP2")
        elif kind == b"jp2c":
            code = body
    if ihdr is None or len(ihdr) < 11 or ihdr[10] == 255:   # 255: bits differ per band
        return _j2k(read, code, geo)
    h, w, comps, bpc = struct.unpack(">IIHB", ihdr)
    return _jp2_header(h, w, comps, [bpc], geo)


def _j2k(read: Reader, start: int | None, geo: list[str]) -> SceneHeader | None:
    """The SIZ marker of a JPEG 2000 codestream at ``start``."""
    if start is None:
        return None
    siz = read(start, 42)
    if len(siz) < 42 or siz[:4] != _J2K_SIGNATURE:
        return None
    xs, ys, xo, yo = struct.unpack(">IIII", siz[8:24])
    (comps,) = struct.unpack(">H", siz[40:42])
    ssiz = read(start + 42, 3 * comps)
    if len(ssiz) < 3 * comps:
        return None
    return _jp2_header(ys - yo, xs - xo, comps, list(ssiz[::3]), geo)


def _jp2_header(h: int, w: int, comps: int, ssiz: list[int],
                geo: list[str]) -> SceneHeader | None:
    if not _valid(h, w, comps):
        return None
    depth = max((s & 0x7F) + 1 for s in ssiz)
    signed = any(s & 0x80 for s in ssiz)
    size = 8 if depth <= 8 else 16 if depth <= 16 else 32
    header = SceneHeader(h, w, comps, f"{'int' if signed else 'uint'}{size}", "jp2", bool(geo))
    return _with_reasons(header, [f"georeferenced ({', '.join(geo)})"] if geo else [])
