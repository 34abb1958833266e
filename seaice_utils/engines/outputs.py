"""One input's outputs as a verifiable set: fingerprints, publication, resume checks, the folder.

Every job of the engine layer (auto-labelling, prediction) writes, for each input, a few files and
a JSON *sidecar* (``<name>.json``). This module is the one place that decides what "done" means:

*Publication* (:func:`publish_set`)
    The old sidecar is removed first, then every other file is written atomically, then the
    sidecar, last, recording each file's name, size and SHA-256 (``outputs``) and the
    *fingerprint* of what made them. A set is complete exactly when its sidecar is there.
*Fingerprint* (:func:`fingerprint`)
    Everything that determines the outputs: the job's settings (a digest of the task's settings
    dict: filter, thresholds, stretch, model file hash, ...), the input (file name, size and
    SHA-256 of its bytes) and the package version.
*Resume* (:func:`set_state`)
    ``"done"`` only when the sidecar parses, every file it records is there with the recorded
    size and checksum, and the fingerprint matches; ``"changed"`` when the files are intact but
    made with other settings or from another input; ``"missing"`` otherwise.
*The output folder* (:func:`check_output_folder`, :func:`own_outputs`)
    Refuse a folder that is a file or cannot be written, before any work; refuse a job whose
    outputs would overwrite one of its inputs; never take a job's own earlier outputs (recorded
    in their sidecars) for inputs; remove temporary files a killed run left behind.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> paths = {"map": d / "a_map.png", "sidecar": d / "a.json"}
>>> fp = fingerprint({"threshold": 3}, {"name": "a.png", "bytes": 3, "sha256": "x"})
>>> meta = publish_set(paths, {"map": b"PNG", "sidecar": b"{}"}, fingerprint=fp)
>>> meta["outputs"]["map"]["bytes"], meta["fingerprint"] == fp
(3, True)
>>> set_state(paths, fp), set_state(paths, fingerprint({"threshold": 4}, fp["input"]))
('done', 'changed')
>>> _ = (d / "a_map.png").write_bytes(b"PN")          # truncated
>>> set_state(paths, fp)
'missing'
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from seaice_utils import __version__
from seaice_utils.core.scenes import json_bytes
from seaice_utils.report import sha256_file
from seaice_utils.errors import InputError

__all__ = ["fingerprint", "settings_digest", "input_record", "publish_set", "set_state",
           "check_output_folder", "own_outputs", "check_collisions", "remove_stale_temporaries",
           "SIDECAR"]

#: Key of the sidecar in a task's output paths (always the last key).
SIDECAR = "sidecar"
_UMASK = os.umask(0)
os.umask(_UMASK)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def settings_digest(settings: Mapping[str, Any]) -> str:
    """SHA-256 of a settings dict in canonical JSON (key order and float formatting fixed)."""
    return sha256_bytes(json.dumps(settings, sort_keys=True, default=str).encode())


def input_record(path: str | os.PathLike | None = None, *, content: bytes | None = None,
                 name: str | None = None) -> dict:
    """What identifies an input: its file name, size and the SHA-256 of its bytes.

    Pass a ``path``, or the file's ``content`` and ``name`` (Spark's ``binaryFile`` rows): both
    give the same record for the same file.
    """
    if content is None:
        p = Path(path)
        return {"name": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)}
    return {"name": Path(name or "").name, "bytes": len(content), "sha256": sha256_bytes(content)}


def fingerprint(settings: Mapping[str, Any] | str, input_rec: Mapping[str, Any]) -> dict:
    """The fingerprint recorded in a sidecar: settings digest, input record, package version."""
    digest = settings if isinstance(settings, str) else settings_digest(settings)
    return {"settings": digest, "input": dict(input_rec), "version": __version__}


def publish_set(paths: Mapping[str, Path], outputs: Mapping[str, bytes], *,
                fingerprint: Mapping[str, Any] | None = None) -> dict:
    """Write one input's outputs as a set, the sidecar last, recording what was written.

    ``paths`` maps output keys to files; the sidecar is :data:`SIDECAR` (a JSON object in
    ``outputs``, completed here with ``outputs``: name, size and SHA-256 of every other file, and
    ``fingerprint`` when given). Keys of ``paths`` missing from ``outputs`` are optional outputs
    not made for this input (an old file of that name is removed, so the set stays consistent).
    Returns the sidecar as written.

    Nothing is half-published: every file is first written in full to a temporary file beside
    it; only when all are written (a full disk fails here, and the earlier set stays as it was)
    is the old sidecar removed, the files renamed into place, and the new sidecar written.
    """
    side = Path(paths[SIDECAR])
    files, staged = {}, []
    try:
        for key, path in paths.items():
            if key == SIDECAR or outputs.get(key) is None:
                continue
            path, data = Path(path), outputs[key]
            staged.append((_stage(path, data), path))
            files[key] = {"file": path.name, "bytes": len(data), "sha256": sha256_bytes(data)}
        meta = json.loads(outputs[SIDECAR])
        meta["outputs"] = files
        if fingerprint is not None:
            meta["fingerprint"] = dict(fingerprint)
        side_data = json_bytes(meta)
        staged.append((_stage(side, side_data), side))
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
    side.unlink(missing_ok=True)                 # incomplete from here until the sidecar is back
    for key, path in paths.items():
        if key != SIDECAR and outputs.get(key) is None:
            Path(path).unlink(missing_ok=True)
    for tmp, path in staged:
        os.replace(tmp, path)                    # the sidecar is staged last, so renamed last
    return meta


def _stage(path: Path, data: bytes) -> str:
    """``data`` written in full to a temporary file beside ``path`` (``.<name>.<random>.tmp``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)
    except OSError as exc:
        os.unlink(tmp)
        raise OSError(exc.errno, exc.strerror, str(path)) from None   # named: which folder
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def read_sidecar(path: str | os.PathLike) -> dict | None:
    try:
        meta = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def set_state(paths: Mapping[str, Path], fingerprint: Mapping[str, Any] | None) -> str:
    """``"done"``, ``"changed"`` (intact, other settings or input) or ``"missing"``."""
    side = Path(paths[SIDECAR])
    meta = read_sidecar(side)
    if meta is None or not isinstance(meta.get("outputs"), dict) or not meta["outputs"]:
        return "missing"
    for rec in meta["outputs"].values():
        try:
            f = side.parent / rec["file"]
            if f.stat().st_size != rec["bytes"] or sha256_file(f) != rec["sha256"]:
                return "missing"
        except (OSError, KeyError, TypeError):
            return "missing"
    if fingerprint is not None and meta.get("fingerprint") != dict(fingerprint):
        return "changed"
    return "done"


def check_output_folder(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` if needed and make sure files can be written there, before any work.

    Raises :class:`InputError` (a usage error: the command line exits 2) when it is a file, or
    cannot be created or written.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output folder {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".seaice-write-test-{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"output folder {out} cannot be written: "
                         f"{exc.strerror or type(exc).__name__}") from None
    return out


def own_outputs(out_dir: str | os.PathLike) -> set[Path]:
    """Files in ``out_dir`` that a job wrote, as its sidecars record them (size and checksum
    must match: a user's file of the same name is not the job's)."""
    out = Path(out_dir)
    found: set[Path] = set()
    if not out.is_dir():
        return found
    for side in out.glob("*.json"):
        meta = read_sidecar(side)
        if not meta or not isinstance(meta.get("outputs"), dict):
            continue
        for rec in meta["outputs"].values():
            try:
                f = out / rec["file"]
                if f.is_file() and f.stat().st_size == rec["bytes"]:
                    found.add(f.resolve())
            except (OSError, KeyError, TypeError):
                continue
    return found


def check_collisions(files: Sequence[Path], outputs_of: Iterable[tuple[Path, Mapping[str, Path]]]
                     ) -> None:
    """Raise :class:`InputError` when an output of one input is another (or the same) input."""
    inputs = {Path(f).resolve(): Path(f) for f in files}
    for src, paths in outputs_of:
        for path in paths.values():
            hit = inputs.get(Path(path).resolve())
            if hit is not None:
                raise InputError(
                    f"the outputs of {Path(src).name} would overwrite the input {hit}: write "
                    "the outputs to another folder (the output folder must not hold inputs whose "
                    "names end like the outputs: _classes, _labels)")


def remove_stale_temporaries(out_dir: str | os.PathLike, *, older_than_s: float = 60.0) -> int:
    """Remove the temporary files (``.<name>.<random>.tmp``) that a killed run left in
    ``out_dir``; those younger than ``older_than_s`` may belong to a running job and stay."""
    out = Path(out_dir)
    if not out.is_dir():
        return 0
    now, n = time.time(), 0
    for f in out.glob(".*.tmp"):
        try:
            if now - f.stat().st_mtime >= older_than_s:
                f.unlink()
                n += 1
        except OSError:
            continue
    return n
