"""What each ``seaice`` command does: one ``_cmd_<name>(args) -> exit status`` per command,
looked up by name in :data:`COMMANDS`."""

from __future__ import annotations

import sys
from pathlib import Path

from seaice_utils.collect.run import collect
from seaice_utils.core.ledger import OwnedFolders, claim, record_files
from seaice_utils.core.scenes import Stretch, list_inputs
from seaice_utils.core.tiling import parse_tile_name
from seaice_utils.data.dataset import ensure_synthetic_dataset
from seaice_utils.data.synthetic import agreement_lines, agreement_table
from seaice_utils.engines.base import resolve_workers
from seaice_utils.engines.spark import spark_session
from seaice_utils.errors import InputError, ParamsError
from seaice_utils.inference import predict_inputs, predict_options
from seaice_utils.labelling.jobs import run_label_job
from seaice_utils.labelling.settings import label_options
from seaice_utils.notebooks import check_notebook, strip_notebook
from seaice_utils.params import dump_params, load_params, load_params_dict
from seaice_utils.runner import batch_profiles, run_batch, run_notebooks
from seaice_utils.season import run_season
from seaice_utils.training.runs import train_cli
from seaice_utils.verify import compare_runs, comparison_text

__all__ = ["COMMANDS", "configure_logging"]


def _log():
    import logging

    return logging.getLogger("seaice")


def configure_logging(a) -> None:
    """The ``seaice`` logger: INFO to stderr by default, DEBUG with -v, WARNING with -q."""
    import logging

    level = (logging.WARNING if getattr(a, "quiet", False)
             else logging.DEBUG if getattr(a, "verbose", False) else logging.INFO)
    class CurrentStderr(logging.Handler):
        """Writes to whatever ``sys.stderr`` is when a record comes (a notebook's, a test's)."""

        def emit(self, record):
            try:
                sys.stderr.write(self.format(record) + "\n")
            except Exception:
                self.handleError(record)

    log = logging.getLogger("seaice")
    if not any(getattr(h, "_seaice_cli", False) for h in log.handlers):
        handler = CurrentStderr()
        handler._seaice_cli = True
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(level)
    if getattr(a, "quiet", False) and hasattr(a, "no_progress"):
        a.no_progress = True


def _cmd_synth(a) -> int:
    if a.agreement:
        import cv2

        cv2.setNumThreads(1)
        print("\n".join(agreement_lines(agreement_table(range(a.seeds), size=a.size or 2048))))
        return 0
    if a.out is None:
        raise ParamsError("give the dataset folder OUT (or --agreement)")
    params = load_params(a.params, a.set)
    over = {"n_scenes": a.n_scenes, "scene_size": a.size, "cloudy_fraction": a.cloudy_fraction,
            "cloud_cover": a.cloud_cover, "shadow_cover": a.shadow_cover,
            "nodata_wedge_fraction": a.nodata_wedge_fraction}
    params["data"].update({k: v for k, v in over.items() if v is not None})
    if a.seed is not None:
        params["global"]["seed"] = a.seed
    params = load_params_dict(params, source="command line")
    with OwnedFolders([Path(a.out)], overwrite=a.overwrite, what="synthetic dataset"):
        recs = ensure_synthetic_dataset(a.out, params, progress=not a.no_progress)
    print(f"{len(recs)} synthetic scenes in {a.out}")
    return 0


def _expect_size(text: str | None, inputs, tile_size: int):
    def is_tile(name: str) -> bool:
        try:
            parse_tile_name(name)
        except InputError:
            return False
        return True

    text = (text or "auto").strip().lower()
    if text == "none":
        return None
    if text == "auto":
        names = [p.stem for p in inputs]
        return (tile_size, tile_size) if names and all(map(is_tile, names)) else None
    try:
        parts = [int(x) for x in text.split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise InputError(f"--expect-size takes PX, HxW, auto or none (got {text!r})")
    return (parts[0], parts[-1])


def _engine(a, params: dict, section: str) -> tuple[str, int, str | None]:
    """(engine, workers, Spark master) of a command: its options, else the profile section's
    ``engine`` / ``workers`` and ``engines.spark_master`` (one meaning of workers everywhere: 0
    is all cores)."""
    engine = a.engine or params[section]["engine"]
    workers = resolve_workers(a.workers if a.workers is not None else params[section]["workers"])
    master = a.spark_master or params["engines"]["spark_master"]
    if a.spark_master and engine != "spark":
        raise ParamsError("--spark-master needs --engine spark")
    return engine, workers, master if engine == "spark" else None


def _stretch(a) -> Stretch:
    return Stretch(scale=a.scale, offset=a.offset, reflectance_max=a.reflectance_max)


def _cmd_label(a) -> int:
    params = load_params(a.params, a.set)
    if a.filter_on:
        params["filter"]["apply_to"] = a.filter_on
    engine, workers, master = _engine(a, params, "engines")
    files = list_inputs(a.input)
    opts = label_options(params, no_filter=a.no_filter, bands=a.bands, nodata=a.nodata,
                         stretch=_stretch(a),
                         expect_size=_expect_size(a.expect_size, files,
                                                  params["global"]["tile_size"]))
    spark = {}
    if engine == "spark":
        spark = dict(master=master, output=a.spark_output or params["engines"]["spark_output"],
                     batch_size=params["engines"]["spark_batch_size"])
    elif a.spark_output:
        raise ParamsError("--spark-output needs --engine spark")
    summary = run_label_job(files, a.output, opts, engine=engine, workers=workers,
                            resume=a.resume, progress=not a.no_progress, overwrite=a.overwrite,
                            summary_csv=True, **spark)
    print(summary.describe())
    return 0 if summary.ok else 1


def _filter_from_model(a) -> bool:
    """Whether a model's recorded filter constants apply: no profile named, no filter key set."""
    return not a.params and not any(s.strip().startswith("filter.") for s in a.set)


#: The folders of an outputs folder that ``seaice reproduce`` writes (its notebooks, through
#: ``report``, the training and the collection).
_RUN_FOLDERS = ("tables", "figures", "records", "notebooks", "models", "data", "profiles")


def _cmd_reproduce(a) -> int:
    only = [x.strip() for x in a.only.split(",")] if a.only else None
    specs = a.params or ["quick"]
    batch = len(specs) > 1 or Path(specs[0]).is_dir()
    if a.set:
        specs = _profiles_with_set(specs, a.set, a.outputs, overwrite=a.overwrite)
    out = Path(a.outputs)
    roots = [out / d for d in _RUN_FOLDERS] + [out / "manifest.json", out / "comparison.csv"]
    if batch:
        roots += [out / name for name, _ in batch_profiles(specs)]
        with OwnedFolders(roots, overwrite=a.overwrite, what="runs"):
            rows = run_batch(specs, a.outputs, only=only, notebook_dir=a.notebooks,
                             progress=not a.no_progress)
        print(comparison_text(rows))
        print(f"comparison: {Path(a.outputs) / 'comparison.csv'}   runs: "
              f"{', '.join(str(Path(a.outputs) / r['profile']) for r in rows)}")
        return 0 if all(r["status"] == "ok" for r in rows) else 1
    with OwnedFolders(roots, overwrite=a.overwrite, what="run"):
        m = run_notebooks(specs[0], a.outputs, only=only, notebook_dir=a.notebooks,
                          progress=not a.no_progress)
    for nb in m["notebooks"]:
        print(f"{nb['notebook']:<40} {nb['status']:>6} {nb['seconds']:8.1f} s")
    print(f"tables: {Path(a.outputs) / 'tables'}   figures: {Path(a.outputs) / 'figures'}   "
          f"manifest: {Path(a.outputs) / 'manifest.json'}")
    return 0


def _profiles_with_set(specs: list[str], sets: list[str], outputs: str, *,
                       overwrite: bool = False) -> list[str]:
    """Each profile of ``specs`` (files, names or folders) with the ``--set`` items applied,
    validated and written to ``<outputs>/profiles/<stem>.yml`` (the notebooks read those, and
    the manifest names them)."""
    files = [f for _, f in batch_profiles(specs)]
    out = []
    for f in files:
        path = Path(outputs) / "profiles" / f"{f.stem}.yml"
        if path.resolve() == f.resolve():
            raise InputError(f"--set would overwrite the profile {f}")
        path.parent.mkdir(parents=True, exist_ok=True)
        claim([path], overwrite=overwrite, what="profile with --set")
        dump_params(load_params(f, sets), path)
        record_files([path])
        out.append(str(path))
    return out


def _cmd_verify(a) -> int:
    if (a.b is None) == (a.reference is None):
        raise InputError("give the other run as B or as --reference MANIFEST (one of them)")
    result = compare_runs(a.a, a.b or a.reference, tolerance=a.tolerance)
    print("\n".join(result.lines()))
    return 0 if result.ok else 1


def _cmd_collect(a) -> int:
    import warnings

    params = load_params(a.params, a.set)
    if a.folder:
        params["data"].update(source="folder", folder=a.folder)
    if a.source:
        params["data"]["source"] = a.source
    over = {"max_scenes": a.max_scenes, "export_format": a.export_format,
            "fallback": "error" if a.no_fallback else None}
    params["collect"].update({k: v for k, v in over.items() if v is not None})
    params = load_params_dict(params, source="command line")
    roots = [Path(a.outputs) / "data" / params["data"]["source"],
             Path(a.outputs) / "data" / "synthetic",           # the fallback's dataset
             Path(a.outputs) / "records" / "data_source.json"]
    with warnings.catch_warnings(), OwnedFolders(roots, overwrite=a.overwrite,
                                                 what="collected scenes"):
        warnings.simplefilter("ignore", UserWarning)  # the fallback is printed below
        res = collect(params, a.outputs, progress=not a.no_progress)
    print(res.message(), file=sys.stderr if res.fell_back else sys.stdout)
    print(f"catalogue: {res.root / 'catalogue.csv'}   record: "
          f"{Path(a.outputs) / 'records' / 'data_source.json'}")
    return 0


def _cmd_train(a) -> int:
    if a.workers < 1:
        raise SystemExit(f"seaice train: --workers must be >= 1 (got {a.workers})")
    labels = ("man", "auto") if a.labels == "both" else (a.labels,)
    roots = [Path(a.outputs) / "models", Path(a.outputs) / "records"]
    with OwnedFolders(roots, overwrite=a.overwrite, what="models and their records"):
        return train_cli(a.params, a.outputs, labels=labels, workers=a.workers, hosts=a.hosts,
                         epochs=a.epochs, mixed_precision=a.mixed_precision, xla=a.xla,
                         progress=not a.no_progress, overrides=a.set)


def _cmd_predict(a) -> int:
    params = load_params(a.params, a.set)
    opts = predict_options(
        params, model=a.model, filter_from_model=_filter_from_model(a), filter_on=a.filter_on,
        input=a.input_kind, apply_filter=False if a.no_filter else (True if a.filter else None),
        overlap=a.overlap, blend=a.blend, batch_size=a.batch_size, runtime=a.runtime,
        bands=a.bands, nodata=a.nodata, pixel_size_m=a.pixel_size,
        geotiff=False if a.no_geotiff else None, stretch=_stretch(a))
    engine, workers, master = _engine(a, params, "inference")
    spark = None
    if engine == "spark" and master:
        spark = spark_session(master, app_name="seaice-predict", progress=not a.no_progress)
    summary = predict_inputs(a.model, a.input, a.output, opts, engine=engine, workers=workers,
                             resume=a.resume, progress=not a.no_progress, spark=spark,
                             overwrite=a.overwrite)
    print(summary.describe())
    return 0 if summary.ok else 1


def _cmd_season(a) -> int:
    params = load_params(a.params, a.set)
    engine, workers, master = _engine(a, params, "season")
    spark = None
    if engine == "spark" and master:
        spark = spark_session(master, app_name="seaice-season", progress=not a.no_progress)
    res = run_season(a.input, a.output, model=a.model, labels=a.labels, params=params,
                     engine=engine, workers=workers, resume=a.resume,
                     progress=not a.no_progress, cloud_mask_dir=a.cloud_masks,
                     overwrite=a.overwrite, filter_from_model=_filter_from_model(a),
                     spark=spark)
    if res.job is not None:
        print(res.job.describe())
    print("\n".join(res.lines()))
    for name, msg in res.failures:
        print(f"failed: {name}: {msg}", file=sys.stderr)
    print(f"areas: {res.areas_csv}   dates: {res.out_dir / 'dates'}   scenes: "
          f"{res.out_dir / 'scenes'}   ({res.seconds['total']:.2f} s)")
    return 0 if res.ok else 1


def _cmd_params(a) -> int:
    import yaml

    print(yaml.safe_dump(load_params(a.file, a.set), sort_keys=False), end="")
    return 0


def _cmd_notebooks(a) -> int:
    if a.action == "strip":
        for f in a.files:
            if strip_notebook(f):
                print(f"stripped {f}")
        return 0
    problems = [p for f in a.files for p in check_notebook(f)]
    print("\n".join(problems) or "notebooks follow the conventions")
    return 1 if problems else 0


COMMANDS = {"synth": _cmd_synth, "label": _cmd_label, "reproduce": _cmd_reproduce,
            "verify": _cmd_verify, "params": _cmd_params, "collect": _cmd_collect,
            "train": _cmd_train, "predict": _cmd_predict, "notebooks": _cmd_notebooks,
            "season": _cmd_season}
