"""The interactive tuner of notebook 02: an ipywidgets UI with sliders for the HSV ranges and
the filter constants, a live before/after preview, a message area, and a button that writes the
tuned profile.

The UI is plain Python objects and callbacks, so it is testable without a browser: change
``tuner.controls[key].value`` and read ``tuner.result`` / ``tuner.message.value``.
"""

from __future__ import annotations

import copy
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from seaice_utils.core.classes import CLASS_NAMES, DISPLAY_ORDER, RANGE_KEYS
from seaice_utils.core.figures import figure_to_png
from seaice_utils.errors import InputError, ParamsError
from seaice_utils.labelling.cloudfilter import thin_cloud_shadow_filter
from seaice_utils.labelling.kernels import MEDIAN_KERNEL_MAX
from seaice_utils.labelling.settings import filter_params
from seaice_utils.params import load_params_dict
from seaice_utils.tuning.figures import panels_figure
from seaice_utils.tuning.previews import FRACTION_COLUMNS, VARIANTS, preview
from seaice_utils.tuning.samples import TuningSample, load_samples
from seaice_utils.tuning.settings import (CLASS_KEYS, V_LINKS, apply_settings, settings_of,
                                          write_tuned_params)

__all__ = ["Tuner", "build_tuner", "range_errors", "describe_error"]

_CLASS_VALUE = {RANGE_KEYS[c]: c for c in DISPLAY_ORDER}
#: Text shown for the tuner where its widgets cannot be displayed (not saved in a notebook file).
TUNER_PLACEHOLDER = ("[threshold tuner: live only after the notebook has run in the open kernel; "
                     "run it (Run > Run All Cells) to use the sliders]")
#: Slider labels of the filter constants (the tuner's "filter" tab).
_FILTER_LABELS = {"water_v_max": "water V max", "dilation": "dilation",
                  "median_kernel": "median kernel", "truncation": "truncation",
                  "thick_threshold": "thick threshold", "apply_to": "apply to"}


def _slider(key: str) -> str | None:
    """Where a setting is in the tuner, in its own words, e.g. "'V lower' of thin ice (HSV
    ranges tab)"; None for a key the tuner has no control for."""
    parts = key.split(".")
    if parts[0] == "filter" and len(parts) == 2 and parts[1] in _FILTER_LABELS:
        return f"'{_FILTER_LABELS[parts[1]]}' (filter tab)"
    if (parts[0] == "autolabel" and len(parts) == 4 and parts[1] in _CLASS_VALUE
            and parts[2] in ("lower", "upper") and parts[3] in "HSV"):
        fold = ", under 'H and S'" if parts[3] in "HS" else ""
        return (f"'{parts[3]} {parts[2]}' of {CLASS_NAMES[_CLASS_VALUE[parts[1]]]} "
                f"(HSV ranges tab{fold})")
    return None


def range_errors(settings: Mapping[str, Any]) -> list[str]:
    """Lower bounds above their upper bound, said in the tuner's terms (which class, which
    slider, which bound, and what would fix it).

    >>> from seaice_utils.params import defaults
    >>> from seaice_utils.tuning.settings import settings_of
    >>> s = settings_of(defaults())
    >>> range_errors(s)
    []
    >>> s["autolabel.thin.lower.V"] = 210
    >>> range_errors(s)  # doctest: +NORMALIZE_WHITESPACE
    ["thin ice: its 'V lower' bound (210) is above its 'V upper' bound (204); set V lower to
      204 or less, or V upper to 210 or more (HSV ranges tab)"]
    """
    out = []
    for cls in CLASS_KEYS:
        for ch in "HSV":
            lo = settings.get(f"autolabel.{cls}.lower.{ch}")
            hi = settings.get(f"autolabel.{cls}.upper.{ch}")
            if lo is None or hi is None or lo <= hi:
                continue
            fold = ", under 'H and S'" if ch in "HS" else ""
            out.append(f"{CLASS_NAMES[_CLASS_VALUE[cls]]}: its '{ch} lower' bound ({lo}) is above "
                       f"its '{ch} upper' bound ({hi}); set {ch} lower to {hi} or less, or "
                       f"{ch} upper to {lo} or more (HSV ranges tab{fold})")
    return out


_BOUND_KEY = re.compile(r"autolabel\.(" + "|".join(CLASS_KEYS) + r")\.(lower|upper)\.([HSV])\b")
_FILTER_KEY = re.compile(r"filter\.(" + "|".join(_FILTER_LABELS) + r")\b")


def describe_error(message: str) -> str:
    """A settings error (``"section.key: must be ..."``) with the key replaced by the slider
    that holds it; messages about keys the tuner has no control for are returned unchanged.
    Bounds and filter constants named inside the message (the HSV range and filter checks) are
    said by their slider names too.

    >>> describe_error("filter.median_kernel: must be an integer in 3..255, odd (got 154)")
    "'median kernel' (filter tab): must be an integer in 3..255, odd (got 154)"
    >>> describe_error("autolabel: V 151..204 is in no class's range "
    ...                "(autolabel.thin.upper.V = 150, autolabel.thick.lower.V = 205)")
    "HSV ranges: V 151..204 is in no class's range ('V upper' of thin ice = 150, 'V lower' of thick ice = 205)"
    """
    key, sep, rest = message.partition(": ")
    where = _slider(key) if sep else None
    if where is None and sep and key == "autolabel":
        where = "HSV ranges"
    text = f"{where}: {rest}" if where else message
    text = _BOUND_KEY.sub(lambda m: f"'{m[3]} {m[2]}' of {CLASS_NAMES[_CLASS_VALUE[m[1]]]}", text)
    return _FILTER_KEY.sub(lambda m: f"'{_FILTER_LABELS[m[1]]}'", text)


def _metrics_html(pv: Mapping[str, Any], seconds: float) -> str:
    head = "".join(f"<th style='padding:0 8px'>{c.replace('_', ' ')}</th>"
                   for c in (*FRACTION_COLUMNS, "agreement"))
    body = []
    for variant in VARIANTS:
        if variant not in pv["fractions"]:
            continue
        f = pv["fractions"][variant]
        ag = pv["agreement"].get(variant)
        cells = [f"{100 * f[c]:.1f} %" for c in FRACTION_COLUMNS]
        cells.append("" if ag is None or np.isnan(ag) else f"{100 * ag:.1f} %")
        body.append(f"<tr><td style='padding:0 8px'><b>{variant}</b></td>" + "".join(
            f"<td style='padding:0 8px;text-align:right'>{c}</td>" for c in cells) + "</tr>")
    return (f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"
            f"<small>{pv['n_pixels']:,} data pixels; preview computed in {seconds:.2f} s</small>")


class Tuner:
    """Sliders for the HSV ranges and filter constants with a live preview (see
    :func:`build_tuner`, which builds one and returns its widget).

    Attributes
    ----------
    widget : ipywidgets.VBox
        The whole UI (its ``tuner`` attribute points back here).
    controls : dict of str to ipywidgets widget
        One control per setting (keys as :func:`settings_of`).
    scene : ipywidgets.Dropdown
        Which sample is previewed.
    link : ipywidgets.Checkbox
        Keep adjacent V bounds adjacent (see :data:`V_LINKS`; on by default).
    tabs : ipywidgets.Tab
        "HSV ranges" (a column per class: V bounds, H and S folded away) and "filter".
    image : ipywidgets.Image
        PNG of image | filtered grey | labels without / with filter | reference.
    metrics : ipywidgets.HTML
        Class fractions and agreement of the previewed sample.
    message : ipywidgets.HTML
        Validation errors, warnings and what the write button did.
    path : ipywidgets.Text
        Where the write button writes the profile.
    write_button, reset_button : ipywidgets.Button
    params : dict
        The last valid profile (the one previewed and written).
    error : str or None
        The current validation error, if the sliders hold an invalid combination, in the
        terms of the UI (which slider, which bound; see :func:`describe_error`).
    result : dict
        The last :func:`preview` of the selected sample.
    """

    def __init__(self, samples: Sequence[TuningSample], params: dict, *,
                 write_path: str | os.PathLike | None = None, panel_size: float = 2.3,
                 dpi: int = 72) -> None:
        import ipywidgets as w

        if not samples:
            raise InputError("the tuner needs at least one sample")
        self.samples = list(samples)
        self.base_params = load_params_dict(params)
        self.params = copy.deepcopy(self.base_params)
        self.error: str | None = None
        self.result: dict[str, Any] = {}
        self.panel_size, self.dpi = panel_size, dpi
        self._cache: dict[tuple, np.ndarray] = {}
        self._hold = False

        # Responsive layout: sliders fill their column, the three class columns (200-380 px
        # each) wrap onto new rows when they do not fit side by side, and every value label
        # (which can be typed into) stays inside the notebook, with no horizontal scrolling;
        # tests/test_tuner_browser.py checks this in a 1280 px window with the side bar open.
        slider_style = {"description_width": "64px"}
        row_style = {"description_width": "88px"}
        settings = settings_of(self.params)
        self.controls: dict[str, Any] = {}

        def islider(key: str, label: str, lo: int, hi: int, step: int = 1, *,
                    style: dict = slider_style, max_width: str | None = None):
            v = settings[key]
            s = w.IntSlider(value=v, min=lo, max=max(hi, v), step=step, description=label,
                            continuous_update=False, style=style,
                            layout=w.Layout(width="auto", min_width="180px",
                                            max_width=max_width))
            self.controls[key] = s
            return s

        column = w.Layout(flex="1 1 240px", min_width="200px", max_width="380px",
                          margin="0 12px 8px 0")
        class_boxes = []
        for cls in CLASS_KEYS:
            v_box = [islider(f"autolabel.{cls}.{b}.V", f"V {b}", 0, 255)
                     for b in ("lower", "upper")]
            hs_box = [islider(f"autolabel.{cls}.{b}.{ch}", f"{ch} {b}", 0,
                              185 if ch == "H" else 255)
                      for ch in "HS" for b in ("lower", "upper")]
            hs = w.Accordion(children=[w.VBox(hs_box)])
            hs.set_title(0, "H and S")
            hs.selected_index = None
            title = w.HTML(f"<b>{cls} ({CLASS_NAMES[_CLASS_VALUE[cls]]})</b>")
            class_boxes.append(w.VBox([title, *v_box, hs], layout=column))
        f = "filter."
        wide = {"style": row_style, "max_width": "440px"}
        filt = [islider(f + "water_v_max", "water V max", 0, 255, **wide),
                islider(f + "dilation", "dilation", 1, 31, **wide),
                islider(f + "median_kernel", "median kernel", 3, MEDIAN_KERNEL_MAX, 2, **wide),
                islider(f + "truncation", "truncation", 0, 255, **wide),
                islider(f + "thick_threshold", "thick threshold", 0, 255, **wide)]
        self.controls[f + "apply_to"] = w.ToggleButtons(
            options=["scene", "tile"], value=settings[f + "apply_to"], description="apply to",
            style={"description_width": "88px", "button_width": "72px"},
            layout=w.Layout(width="auto"))
        filt.append(self.controls[f + "apply_to"])

        self.link = w.Checkbox(value=True, description="link adjacent V bounds", indent=False,
                               layout=w.Layout(width="auto"))
        link_note = w.HTML("<small>ticked: thin upper = thick lower - 1 and water upper = "
                           "thin lower - 1 (the V ranges stay disjoint and cover 0..255)</small>",
                           layout=w.Layout(width="auto"))
        self.scene = w.Dropdown(options=[(s.name, i) for i, s in enumerate(self.samples)], value=0,
                                description="scene", style=slider_style,
                                layout=w.Layout(width="auto"))
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.metrics = w.HTML(layout=w.Layout(width="auto", overflow="auto"))
        self.message = w.HTML(layout=w.Layout(width="auto"))
        self.path = w.Text(value="" if write_path is None else str(write_path),
                           description="params file", style=row_style,
                           layout=w.Layout(flex="1 1 320px", min_width="240px",
                                           max_width="640px"),
                           placeholder="path of the profile to write, e.g. params/tuned.yml")
        self.write_button = w.Button(description="Write params", icon="save",
                                     button_style="primary")
        self.reset_button = w.Button(description="Reset", icon="undo")
        wrap = w.Layout(flex_flow="row wrap", width="auto", align_items="flex-start")
        tabs = w.Tab(children=[w.VBox([w.HBox([self.link]), link_note,
                                       w.HBox(class_boxes, layout=wrap)],
                                      layout=w.Layout(width="auto")),
                               w.VBox(filt, layout=w.Layout(width="auto"))],
                     layout=w.Layout(width="auto"))
        tabs.set_title(0, "HSV ranges")
        tabs.set_title(1, "filter")
        self.tabs = tabs
        self.widget = w.VBox([w.HBox([self.scene]), tabs, self.message, self.image, self.metrics,
                              w.HBox([self.path, self.write_button, self.reset_button],
                                     layout=w.Layout(flex_flow="row wrap", width="auto"))],
                             layout=w.Layout(width="auto"))
        # CSS classes name the parts in the page (styling, and the browser test finds them).
        self.widget.add_class("seaice-tuner")
        for key, c in self.controls.items():
            c.add_class("seaice-" + key.replace(".", "-"))
        for part in ("scene", "link", "tabs", "message", "image", "metrics", "path",
                     "write_button", "reset_button"):
            getattr(self, part).add_class("seaice-tuner-" + part.replace("_", "-"))
        self.widget.tuner = self
        # Where widgets cannot be shown (a saved notebook opened elsewhere, or before it is run
        # again), the text that stands in says what to do instead of "VBox(children=...)".
        widget_bundle = self.widget._repr_mimebundle_

        def _repr_mimebundle_(**kwargs: Any) -> dict | None:
            data = widget_bundle(**kwargs)
            if data is not None:
                data["text/plain"] = TUNER_PLACEHOLDER
            return data

        self.widget._repr_mimebundle_ = _repr_mimebundle_

        for key, c in self.controls.items():
            c.observe(self._on_link if key in V_LINKS else self.update, names="value")
        self.scene.observe(self.update, names="value")
        self.write_button.on_click(lambda _b: self.write())
        self.reset_button.on_click(lambda _b: self.reset())
        self.update()

    # -- state
    def settings(self) -> dict[str, Any]:
        """Current control values as flat settings."""
        return {k: c.value for k, c in self.controls.items()}

    @property
    def sample(self) -> TuningSample:
        return self.samples[self.scene.value]

    def _levels(self, params: dict) -> np.ndarray:
        fp = filter_params(params)
        key = (self.scene.value, tuple(sorted(fp.to_dict().items())))
        if key not in self._cache:
            if len(self._cache) > 32:
                self._cache.clear()
            s = self.sample
            self._cache[key] = thin_cloud_shadow_filter(s.rgb, fp, nodata=s.nodata)
        return self._cache[key]

    def _on_link(self, change: Any) -> None:
        """A linked V bound moved: move its partner along (if linking is on), then update."""
        if self.link.value and not self._hold:
            key = next(k for k in V_LINKS if self.controls[k] is change["owner"])
            partner, offset = V_LINKS[key]
            self._hold = True
            try:
                self.controls[partner].value = int(np.clip(change["new"] + offset, 0, 255))
            finally:
                self._hold = False
        self.update()

    def _say(self, text: str, *, kind: str = "info") -> None:
        colour = {"error": "#b00020", "warning": "#a15c00", "info": "#1b5e20"}[kind]
        self.message.value = f"<span style='color:{colour}'>{text}</span>"

    def update(self, change: Any = None) -> bool:
        """Validate the controls and refresh the preview; an invalid combination is reported in
        :attr:`message` (the preview keeps the last valid settings). Returns True when valid."""
        if self._hold:
            return self.error is None
        import html

        settings = self.settings()
        problems = range_errors(settings)
        if not problems:
            try:
                with warnings.catch_warnings():   # allowed gaps: said in the message line
                    warnings.simplefilter("ignore", UserWarning)
                    new = apply_settings(self.base_params, settings)
            except (ParamsError, InputError) as exc:
                problems = [describe_error(str(exc))]
        if problems:
            self.error = "; ".join(problems)
            self._say("<b>invalid:</b> " + "<br>".join(html.escape(p) for p in problems) +
                      "<br>The preview shows the last valid settings; nothing will be written "
                      "until this is fixed.", kind="error")
            return False
        self.error = None
        self.params = new
        t0 = time.perf_counter()
        s = self.sample
        pv = preview(s.rgb, s.nodata, s.truth, new, levels=self._levels(new))
        pv.update(name=s.name, cloud_fraction=s.cloud_fraction)
        seconds = time.perf_counter() - t0
        self.result = pv
        self.image.value = figure_to_png(panels_figure([pv], panel_size=self.panel_size),
                                         dpi=self.dpi)
        self.metrics.value = _metrics_html(pv, seconds)
        if pv["warnings"]:
            self._say("note: " + html.escape("; ".join(describe_error(w) for w in pv["warnings"])),
                      kind="warning")
        else:
            self._say(f"settings valid; previewing {html.escape(s.name)}")
        return True

    def write(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write the current settings as a full profile to ``path`` (default: the path box).

        Reports the outcome in :attr:`message` and returns the path, or None when nothing was
        written (invalid settings, no path, or a write error)."""
        import html

        target = str(path) if path is not None else self.path.value.strip()
        if not target:
            self._say("<b>not written:</b> type the path of the params file to write",
                      kind="error")
            return None
        if not self.update():
            self._say(f"<b>not written:</b> {html.escape(self.error or '')}", kind="error")
            return None
        try:
            out = write_tuned_params(self.params, Path(os.path.expanduser(target)))
        except (ParamsError, InputError, OSError) as exc:
            self._say(f"<b>not written:</b> {html.escape(str(exc))}", kind="error")
            return None
        self._say(f"wrote {html.escape(str(out))}")
        return out

    def reset(self) -> None:
        """Put every control back to the loaded profile's value."""
        self._hold = True
        try:
            for k, v in settings_of(self.base_params).items():
                self.controls[k].value = v
        finally:
            self._hold = False
        self.update()


def build_tuner(records: Sequence, params: dict, *, write_path: str | os.PathLike | None = None,
                panel_size: float = 2.3, dpi: int = 72):
    """The interactive tuning UI: sliders, live preview, message area, write button.

    Parameters
    ----------
    records : sequence of TuningSample or SceneRecord
        Preview samples, or dataset records (read with :func:`load_samples`).
    params : dict
        The loaded profile: start values, and the base of the written profile.
    write_path : path, optional
        Initial content of the "params file" box (e.g. :func:`tuned_params_path`).
    panel_size, dpi : size of the preview panels (inches) and PNG resolution.

    Returns
    -------
    ipywidgets.VBox
        Display it in JupyterLab. ``widget.tuner`` is the :class:`Tuner` behind it: set
        ``widget.tuner.controls["autolabel.thin.upper.V"].value = 220`` and read
        ``widget.tuner.result``, ``widget.tuner.message.value``, or call
        ``widget.tuner.write(path)``.
    """
    records = list(records)
    if records and not isinstance(records[0], TuningSample):
        records = load_samples(records, params)
    return Tuner(records, params, write_path=write_path, panel_size=panel_size, dpi=dpi).widget
