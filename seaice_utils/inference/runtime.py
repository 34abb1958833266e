"""Prediction functions of a model: a compiled TensorFlow function or a TensorFlow Lite interpreter.

:func:`make_predict_fn` turns a Keras model into a function ``x (N, t, t, C) float32 in 0..1 ->
probabilities (N, t, t, K)``, kept for the model's lifetime. TensorFlow is imported only when a
Keras model is wrapped; a plain callable that maps a float32 batch ``(N, t, t, C)`` in 0..1 to
probabilities ``(N, t, t, K)`` is used as it is and works everywhere (tests use one).

The process keeps the models and prediction functions it made (pool processes and Spark Python
workers load a model once); those caches are emptied at exit, while TensorFlow is still alive
(:func:`register_cache`).
"""

from __future__ import annotations

import atexit
import os
import sys
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from seaice_utils.errors import InputError, SeaIceError

__all__ = ["RUNTIMES", "PredictFn", "register_cache", "resolve_runtime", "make_predict_fn"]

RUNTIMES = ("auto", "tensorflow", "tflite")

PredictFn = Callable[[np.ndarray], np.ndarray]


_PREDICT_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_ATEXIT: list[bool] = []
_CACHES: list = [_PREDICT_FNS]


def register_cache(cache) -> None:
    """Have ``cache`` (a dict of models or predict functions) emptied at exit too."""
    _CACHES.append(cache)


def _clear_caches() -> None:
    for cache in _CACHES:
        cache.clear()


def _gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _default_threads() -> int:
    import tensorflow as tf

    n = tf.config.threading.get_intra_op_parallelism_threads()
    if n:
        return int(n)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@contextmanager
def _stderr_to_log() -> Iterator[Path]:
    """Send file descriptor 2 (C++ logging included) to a temporary file inside the block."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="seaice-tflite-") as tmp:
        log = Path(tmp) / "stderr.log"
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):   # no real stderr (some notebook kernels): leave it
            yield log
            return
        with open(log, "wb") as fh:
            os.dup2(fh.fileno(), 2)
            try:
                yield log
            finally:
                os.dup2(saved, 2)
                os.close(saved)


def _tflite_predict(model, batch_size: int, threads: int | None) -> PredictFn:
    """TensorFlow Lite (XNNPACK) interpreter of ``model`` for batches of exactly ``batch_size``
    windows; shorter batches are zero-padded and the padding dropped from the result."""
    import tensorflow as tf

    shape = [int(batch_size), *model.input_shape[1:]]
    if any(d is None for d in shape):
        raise InputError(f"the tflite runtime needs a fixed input size (model input "
                         f"{model.input_shape})")
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec(shape, tf.float32))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
    with _stderr_to_log() as log:   # the converter prints op summaries on the C++ stderr
        try:
            flat = conv.convert()
        except Exception as exc:
            raise SeaIceError(f"TensorFlow Lite conversion failed: {exc}\n"
                              f"{log.read_text(errors='replace')[-2000:]}") from exc
    interp = tf.lite.Interpreter(model_content=flat, num_threads=int(threads or _default_threads()))
    interp.allocate_tensors()
    i_in = interp.get_input_details()[0]["index"]
    i_out = interp.get_output_details()[0]["index"]
    b = int(batch_size)

    def predict(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape[1:]):
            raise InputError(f"the model takes windows of shape {tuple(shape[1:])} "
                             f"(got a batch of shape {x.shape})")
        out = []
        for i in range(0, len(x), b):
            chunk = x[i:i + b]
            n = len(chunk)
            if n < b:
                chunk = np.concatenate([chunk, np.zeros((b - n, *chunk.shape[1:]), np.float32)])
            interp.set_tensor(i_in, chunk)
            interp.invoke()
            out.append(interp.get_tensor(i_out)[:n].copy())
        return np.concatenate(out) if out else np.zeros((0, *shape[1:3], 0), np.float32)

    predict.runtime = "tflite"           # type: ignore[attr-defined]
    predict.tflite_bytes = len(flat)     # type: ignore[attr-defined]
    return predict


def resolve_runtime(model, runtime: str = "auto") -> str:
    """The runtime ``make_predict_fn`` will use: ``auto`` is ``tflite`` on a machine without a
    GPU for a float32 model of fixed input size, else ``tensorflow``."""
    if runtime not in RUNTIMES:
        raise InputError(f"runtime must be one of {', '.join(RUNTIMES)} (got {runtime!r})")
    if runtime != "auto":
        return runtime
    policy = getattr(getattr(model, "dtype_policy", None), "compute_dtype", "float32")
    fixed = all(d is not None for d in model.input_shape[1:])
    return "tflite" if (policy == "float32" and fixed and not _gpu_visible()) else "tensorflow"


def make_predict_fn(model, *, runtime: str = "tensorflow", batch_size: int | None = None,
                    threads: int | None = None) -> PredictFn:
    """A function ``x (N, t, t, C) float32 in 0..1 -> probabilities (N, t, t, K) ndarray``.

    Parameters
    ----------
    model : Keras model or callable
        Any other callable is returned as it is.
    runtime : {"tensorflow", "tflite", "auto"}, keyword-only
        ``tensorflow``: one ``tf.function`` traced once for any batch size (no per-call
        overhead of ``Model.predict``). ``tflite``: the model converted (float32, no
        quantisation) to TensorFlow Lite and run by its XNNPACK CPU kernels for batches of
        exactly ``batch_size`` windows: a 2048 px scene with the paper's U-Net took 2.99 s
        against 3.99 s with TensorFlow on a 2-core CPU (``tests/benchmarks/bench_infer.py``,
        best batch sizes); probabilities agree with TensorFlow to
        about 1e-6, so a class can flip on an exact tie. The conversion takes a few seconds, once
        per model and batch size in a process. ``auto``: :func:`resolve_runtime`; if the
        conversion fails it falls back to ``tensorflow`` with a warning.
    batch_size : int, keyword-only
        Windows per call of the ``tflite`` interpreter (default 8).
    threads : int, keyword-only
        Threads of the ``tflite`` interpreter (default: TensorFlow's intra-op setting, else the
        cores this process may use).

    The function is kept for the model's lifetime (one per runtime and batch size).
    """
    if not hasattr(model, "input_shape") or not hasattr(model, "layers"):
        if not callable(model):
            raise InputError(f"model must be a Keras model or a callable (got "
                             f"{type(model).__name__})")
        return model
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise InputError(f"batch_size must be a positive integer (got {batch_size!r})")
    chosen = resolve_runtime(model, runtime)
    b = int(batch_size or 8)
    key = asked = (chosen, b if chosen == "tflite" else None,
                   threads if chosen == "tflite" else None)
    cached = _PREDICT_FNS.get(model, {})
    if key in cached:
        return cached[key]
    import tensorflow as tf

    if not _ATEXIT:
        atexit.register(_clear_caches)   # free graphs while TensorFlow is still alive
        _ATEXIT.append(True)

    predict = None
    if chosen == "tflite":
        try:
            predict = _tflite_predict(model, b, threads)
        except Exception as exc:  # the converter raises many types for unsupported graphs
            if runtime == "tflite":
                if isinstance(exc, SeaIceError):
                    raise
                raise SeaIceError(f"cannot run the model with TensorFlow Lite: {exc}") from exc
            import warnings

            warnings.warn(f"TensorFlow Lite conversion failed ({type(exc).__name__}: {exc}); "
                          "predicting with TensorFlow", RuntimeWarning, stacklevel=2)
        if predict is None:
            key = ("tensorflow", None, None)
            if key in cached:
                return cached[key]
    if predict is None:
        spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
        fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])

        def predict(x: np.ndarray) -> np.ndarray:
            return fn(tf.convert_to_tensor(x, tf.float32)).numpy()

        predict.runtime = "tensorflow"   # type: ignore[attr-defined]
    _PREDICT_FNS.setdefault(model, {}).update({key: predict, asked: predict})
    return predict
