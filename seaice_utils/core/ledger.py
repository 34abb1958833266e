"""Which files in a folder seaice wrote: the ownership rule every writing command follows.

seaice replaces a file only when it recorded that file as its own output, with its size and
SHA-256, and the file still has them. A file is **owned** when one of these records it:

* the folder's *ledger*, ``.seaice-ledger.jsonl`` (one JSON line per file written:
  ``{"file", "bytes", "sha256"}``; appended, the last line of a name wins), which
  :func:`publish_file` keeps for every table, figure, CSV, model or data file it writes;
* a scene *sidecar* in the folder (``<name>.json`` whose ``outputs`` list the scene's files with
  their sizes and checksums; :mod:`seaice_utils.engines.outputs`); a sidecar is itself owned
  when it is one (a JSON object with ``outputs`` and a ``fingerprint``);
* a run's ``manifest.json`` (its ``output_files``: tables and figures of ``seaice reproduce``).

Any other existing file that an output would replace is **foreign**: :func:`claim` refuses the
whole command before any work (:class:`ForeignFilesError`, a usage error: exit 2) naming the
first such files and ``--overwrite``; with ``overwrite=True`` it adopts them (records them in the
ledger), so that they are replaced. :func:`publish_file` refuses to replace a foreign file too, as
a last guard for writers that could not list their outputs in advance.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = publish_file(d / "areas.csv", b"a,b\\n")
>>> is_owned(d / "areas.csv")
True
>>> _ = (d / "notes.txt").write_text("mine")
>>> [p.name for p in foreign([d / "areas.csv", d / "notes.txt", d / "new.csv"])]
['notes.txt']
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Sequence

from seaice_utils.core.scenes import atomic_write_bytes
from seaice_utils.errors import InputError

__all__ = ["LEDGER", "ForeignFilesError", "publish_file", "publish_if_changed", "record_files",
           "is_owned", "foreign", "claim", "foreign_in_folders", "remove_owned", "is_sidecar",
           "OwnedFolders"]

#: The ledger's file name, in each folder seaice writes files to.
LEDGER = ".seaice-ledger.jsonl"
_MANIFEST = "manifest.json"


class ForeignFilesError(InputError):
    """Outputs would replace files seaice did not write (exit 2; ``--overwrite`` allows it)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _ledger(folder: Path) -> dict[str, tuple[int, str]]:
    """name -> (bytes, sha256) of the folder's ledger (the last line of a name)."""
    out: dict[str, tuple[int, str]] = {}
    try:
        text = (folder / LEDGER).read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            rec = json.loads(line)
            out[str(rec["file"])] = (int(rec["bytes"]), str(rec["sha256"]))
        except (ValueError, KeyError, TypeError):
            continue                              # a torn or foreign line records nothing
    return out


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_sidecar(path: str | os.PathLike) -> bool:
    """True when ``path`` is a scene sidecar seaice wrote (its outputs and fingerprint)."""
    meta = _read_json(Path(path)) if str(path).endswith(".json") else None
    return (isinstance(meta, dict) and isinstance(meta.get("outputs"), dict)
            and isinstance(meta.get("fingerprint"), dict))


def _recorded(folder: Path) -> dict[str, set[tuple[int, str]]]:
    """Every record of the folder's files, by name: its sidecars', its manifest's and its
    ledger's (a file is owned when any of them records it as it is now)."""
    rec: dict[str, set[tuple[int, str]]] = {}

    def add(name, r) -> None:
        try:
            rec.setdefault(str(name), set()).add((int(r["bytes"]), str(r["sha256"])))
        except (KeyError, TypeError, ValueError):
            pass

    for side in folder.glob("*.json"):
        meta = _read_json(side)
        if (isinstance(meta, dict) and isinstance(meta.get("outputs"), dict)
                and isinstance(meta.get("fingerprint"), dict)):
            for r in meta["outputs"].values():
                if isinstance(r, dict):
                    add(r.get("file"), r)
    manifest = _read_json(folder.parent / _MANIFEST)
    if isinstance(manifest, dict) and isinstance(manifest.get("output_files"), dict):
        for key, r in manifest["output_files"].items():
            if isinstance(r, dict) and Path(key).parent.name == folder.name:
                add(Path(key).name, r)
    for name, r in _ledger(folder).items():
        add(name, {"bytes": r[0], "sha256": r[1]})
    return rec


def _owned_in(folder: Path, names: Iterable[str]) -> set[str]:
    rec = _recorded(folder)
    owned = set()
    for name in names:
        p = folder / name
        if name == LEDGER or is_sidecar(p):
            owned.add(name)
            continue
        records = rec.get(name)
        try:
            if records and any(p.stat().st_size == b for b, _ in records) and \
                    (p.stat().st_size, _sha256(p)) in records:
                owned.add(name)
        except OSError:
            continue
    return owned


def is_owned(path: str | os.PathLike) -> bool:
    """True when seaice recorded ``path`` as its own and it is unchanged since."""
    p = Path(path)
    return p.name in _owned_in(p.parent, [p.name])


def foreign(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The existing files among ``paths`` that seaice did not write (in the given order)."""
    by_folder: dict[Path, list[Path]] = {}
    order = []
    for p in paths:
        p = Path(p)
        if p.is_file() or (p.exists() and not p.is_dir()):
            by_folder.setdefault(p.parent, []).append(p)
            order.append(p)
        elif p.is_dir():
            continue
    owned: set[Path] = set()
    for folder, files in by_folder.items():
        owned |= {folder / n for n in _owned_in(folder, [f.name for f in files])}
    return [p for p in order if p not in owned]


def foreign_in_folders(folders: Iterable[str | os.PathLike], *,
                       pattern: str = "*") -> list[Path]:
    """Foreign files directly inside ``folders`` (hidden files and sub-folders aside)."""
    files = []
    for folder in folders:
        folder = Path(folder)
        if folder.is_dir():
            files += sorted(f for f in folder.glob(pattern)
                            if f.is_file() and not f.name.startswith("."))
    return foreign(files)


def record_files(paths: Iterable[str | os.PathLike]) -> None:
    """Record ``paths`` (as they are now) as seaice's own, in their folders' ledgers."""
    lines: dict[Path, list[str]] = {}
    for p in paths:
        p = Path(p)
        rec = {"file": p.name, "bytes": p.stat().st_size, "sha256": _sha256(p)}
        lines.setdefault(p.parent, []).append(json.dumps(rec, sort_keys=True))
    for folder, ls in lines.items():
        with open(folder / LEDGER, "a") as fh:    # one write per folder: O_APPEND keeps lines whole
            fh.write("\n".join(ls) + "\n")


def _shown(files: Sequence[Path], limit: int = 3) -> str:
    s = ", ".join(str(f) for f in files[:limit])
    return s + (f" and {len(files) - limit} more" if len(files) > limit else "")


def claim(paths: Iterable[str | os.PathLike], *, overwrite: bool = False,
          what: str = "outputs") -> list[Path]:
    """Check, before any work, that no output would replace a foreign file.

    Returns the foreign files (empty when there are none). With ``overwrite`` they are adopted
    (recorded as seaice's own) and will be replaced; without it :class:`ForeignFilesError`
    names the first of them and the option that allows it.
    """
    found = foreign(paths)
    if found and not overwrite:
        raise ForeignFilesError(
            f"{len(found)} file(s) that seaice did not write would be replaced by the {what}: "
            f"{_shown(found)}; move them away, choose another output folder, or pass "
            f"--overwrite to replace them")
    if found:
        record_files(found)
    return found


def publish_file(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically and record it in the folder's ledger.

    Raises :class:`ForeignFilesError` when ``path`` holds a file seaice did not write (unless
    ``overwrite``): nothing of a user's is replaced silently.
    """
    p = Path(path)
    if not overwrite and p.exists() and not is_owned(p):
        raise ForeignFilesError(f"{p} was not written by seaice and would be replaced; move it "
                                f"away or pass --overwrite")
    atomic_write_bytes(p, data)
    with open(p.parent / LEDGER, "a") as fh:
        fh.write(json.dumps({"file": p.name, "bytes": len(data),
                             "sha256": hashlib.sha256(data).hexdigest()}, sort_keys=True) + "\n")
    return p


def publish_if_changed(path: str | os.PathLike, data: bytes) -> bool:
    """:func:`publish_file` unless ``path`` already holds exactly ``data`` (a rerun leaves an
    unchanged output, its time and the ledger alone); True when it wrote."""
    p = Path(path)
    try:
        if p.read_bytes() == data:
            return False
    except OSError:
        pass
    p.parent.mkdir(parents=True, exist_ok=True)
    publish_file(p, data)
    return True


def remove_owned(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Remove the files among ``paths`` that seaice owns; return those removed (foreign files
    stay: :func:`claim` first)."""
    paths = [Path(p) for p in paths if Path(p).is_file()]
    gone = [p for p in paths if p not in set(foreign(paths))]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def _tree(roots: Iterable[Path]) -> dict[Path, tuple[int, int]]:
    out = {}
    for root in roots:
        if root.is_file():
            files = [root]
        elif root.is_dir():
            files = [f for f in root.rglob("*") if f.is_file()]
        else:
            continue
        for f in files:
            if any(part.startswith(".") for part in f.relative_to(root.parent).parts):
                continue                           # ledgers, temporaries, hidden files
            st = f.stat()
            out[f] = (st.st_size, st.st_mtime_ns)
    return out


class OwnedFolders:
    """The ownership rule for a command whose outputs are not known file by file in advance
    (``seaice synth``, ``collect``, ``train``, ``reproduce``): the folders (and files) it writes.

    On entry, any file there that seaice did not write stops the command before any work
    (:class:`ForeignFilesError`; with ``overwrite`` they are adopted and may be replaced). On
    exit, even after a failure, every file the command created or changed there is recorded as
    seaice's own, so that its next run may replace it.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with OwnedFolders([d / "tables"]):
    ...     _ = (d / "tables").mkdir(), (d / "tables" / "t.csv").write_text("x")
    >>> is_owned(d / "tables" / "t.csv")
    True
    """

    def __init__(self, roots: Iterable[str | os.PathLike], *, overwrite: bool = False,
                 what: str = "outputs") -> None:
        self.roots = [Path(r) for r in roots]
        self.overwrite, self.what = overwrite, what

    def __enter__(self) -> "OwnedFolders":
        self.before = _tree(self.roots)
        claim(sorted(self.before), overwrite=self.overwrite, what=self.what)
        return self

    def __exit__(self, *exc) -> None:
        after = _tree(self.roots)
        changed = [f for f, st in after.items() if self.before.get(f) != st]
        if changed:
            record_files(changed)
