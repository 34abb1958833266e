"""Test-only: make one rank of a launched training run raise at the start of an epoch.

The ranks are separate processes started by ``horovodrun``, so the failure is installed in them
at start-up: :func:`failing_env` gives ``launch(..., env=...)`` a ``PYTHONPATH`` whose first folder
holds a ``sitecustomize.py`` that calls :func:`install`, and the rank and epoch that fail.
:func:`install` wraps :func:`seaice_utils.training.callbacks.make_callbacks` so that the chosen
rank trains with one more callback, first in the list, which raises
``RuntimeError("injected failure ...")`` when the chosen epoch (0-based) begins. Everything else
the rank does (reporting the failure, horovodrun stopping the others) is the production code's.
"""

from __future__ import annotations

import os
from pathlib import Path

#: ``"R:E"``: rank R raises at the start of epoch E (0-based).
ENV = "SEAICE_TEST_RANK_FAILS_AT"
TESTS_DIR = Path(__file__).resolve().parent


def install() -> None:
    """Wrap ``make_callbacks`` in this process when :data:`ENV` is set (else do nothing)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    rank, epoch = (int(x) for x in spec.split(":"))

    import seaice_utils.training.callbacks as callbacks

    original = callbacks.make_callbacks

    def make_callbacks(settings, hv, *args, **kwargs):
        cbs, throughput = original(settings, hv, *args, **kwargs)
        if hv.rank() == rank:
            cbs.insert(0, _failing_callback(rank, epoch))
        return cbs, throughput

    callbacks.make_callbacks = make_callbacks


def _failing_callback(rank: int, epoch: int):
    import tensorflow as tf

    class FailAtEpoch(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None):
            if e == epoch:
                raise RuntimeError(f"injected failure (rank {rank}, epoch {epoch})")

    return FailAtEpoch()


def failing_env(tmp: Path, rank: int, epoch: int) -> dict[str, str]:
    """Environment for ``launch(..., env=...)`` that makes ``rank`` fail when ``epoch`` begins;
    writes ``<tmp>/sitecustomize.py``."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "sitecustomize.py").write_text("import horovod_failure\nhorovod_failure.install()\n")
    path = [str(tmp), str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(filter(None, path)), ENV: f"{rank}:{epoch}"}
