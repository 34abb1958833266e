"""The interactive tuner of notebook 02: an ipywidgets UI with sliders for the HSV ranges and
the filter constants, a live before/after preview, a message area, and a button that writes the
tuned profile.

The UI is plain Python objects and callbacks, so it is testable without a browser: change
``tuner.controls[key].value`` and read ``tuner.result`` / ``tuner.message.value``.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from seaice_utils.core.classes import CLASS_NAMES, UNLABELLED
from seaice_utils.core.figures import figure_to_png
from seaice_utils.errors import InputError, ParamsError
from seaice_utils.labelling.cloudfilter import thin_cloud_shadow_filter
from seaice_utils.labelling.kernels import MEDIAN_KERNEL_MAX
from seaice_utils.labelling.settings import filter_params
from seaice_utils.params import load_params_dict
from seaice_utils.report import project_root
from seaice_utils.tuning.figures import tuner_figure
from seaice_utils.tuning.previews import preview
from seaice_utils.tuning.samples import TuningSample, load_samples
from seaice_utils.tuning.settings import (CLASS_KEYS, V_LINKS, apply_settings, settings_of,
                                          write_tuned_params)
from seaice_utils.tuning.wording import (ALLOW_GAPS_LABEL, CLASS_VALUE, describe_error,
                                         hex_colour, metrics_html, range_errors)

__all__ = ["Tuner", "build_tuner", "range_errors", "describe_error"]

#: Text shown for the tuner where its widgets cannot be displayed (not saved in a notebook file).
TUNER_PLACEHOLDER = ("[threshold tuner: live only after the notebook has run in the open kernel; "
                     "run it (Run > Run All Cells) to use the sliders]")
#: Width of the controls column (the preview takes the rest of the row).
CONTROLS_WIDTH = "372px"


def _shown(path: Path) -> str:
    """A path as the tuner shows it: relative to the project folder when inside it."""
    root = project_root()
    p = Path(os.path.abspath(path))
    if root is not None and (root == p or root in p.parents):
        return p.relative_to(root).as_posix()
    return str(p)


def _resolve(text: str) -> Path:
    """A path typed into the box: relative paths are taken from the project folder."""
    p = Path(os.path.expanduser(text))
    root = project_root()
    return p if p.is_absolute() or root is None else root / p


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
    allow_gaps : ipywidgets.Checkbox
        ``autolabel.allow_gaps`` (also ``controls["autolabel.allow_gaps"]``): ranges may leave
        colours in no class (shown magenta, counted as unlabelled), e.g. a narrowed H or S range.
    tabs : ipywidgets.Tab
        "HSV ranges" (a column per class: V bounds, H and S folded away) and "filter".
    image : ipywidgets.Image
        PNG of image | filtered grey | labels without / with filter | reference.
    metrics : ipywidgets.HTML
        Class fractions and agreement of the previewed sample.
    message : ipywidgets.HTML
        Validation errors, warnings and what the write button did.
    path : ipywidgets.Text
        Where the write button writes the profile (shown, and taken when relative, from the
        project folder).
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
                 write_path: str | os.PathLike | None = None, panel_size: float = 2.1,
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

        # One screen at 1280 x 800 with the side bar open (tests/test_tuner_browser.py): the
        # controls in a column of CONTROLS_WIDTH beside the preview and its fraction table; in
        # that column a slider track is about 200 px (255 values: under 2 per pixel) and every
        # value label can be typed into. H and S are folded away.
        slider_style = {"description_width": "64px"}
        row_style = {"description_width": "104px"}
        settings = settings_of(self.params)
        self.controls: dict[str, Any] = {}

        def islider(key: str, label: str, lo: int, hi: int, step: int = 1, *,
                    style: dict = slider_style):
            v = settings[key]
            s = w.IntSlider(value=v, min=lo, max=max(hi, v), step=step, description=label,
                            description_allow_html=False, continuous_update=False, style=style,
                            layout=w.Layout(width="100%", margin="1px 0"))
            s.description_tooltip = label
            self.controls[key] = s
            return s

        class_boxes = []
        for cls in CLASS_KEYS:
            v_box = [islider(f"autolabel.{cls}.{b}.V", f"V {b}", 0, 255)
                     for b in ("lower", "upper")]
            hs_box = [islider(f"autolabel.{cls}.{b}.{ch}", f"{ch} {b}", 0,
                              185 if ch == "H" else 255, style={"description_width": "52px"})
                      for ch in "HS" for b in ("lower", "upper")]
            hs = w.Accordion(children=[w.VBox(hs_box, layout=w.Layout(width="100%"))],
                             layout=w.Layout(width="100%"))
            hs.set_title(0, f"H and S of {CLASS_NAMES[CLASS_VALUE[cls]]}")
            hs.selected_index = None
            title = w.HTML(f"<b>{CLASS_NAMES[CLASS_VALUE[cls]]}</b> ({cls})",
                           layout=w.Layout(margin="2px 0 0 0"))
            class_boxes.append(w.VBox([title, *v_box, hs], layout=w.Layout(width="100%")))
        f = "filter."
        filt = [islider(f + "water_v_max", "water V max", 0, 255, style=row_style),
                islider(f + "dilation", "dilation", 1, 31, style=row_style),
                islider(f + "median_kernel", "median kernel", 3, MEDIAN_KERNEL_MAX, 2,
                        style=row_style),
                islider(f + "truncation", "truncation", 0, 255, style=row_style),
                islider(f + "thick_threshold", "thick threshold", 0, 255, style=row_style)]
        self.controls[f + "apply_to"] = w.ToggleButtons(
            options=["scene", "tile"], value=settings[f + "apply_to"], description="apply to",
            style={"description_width": "104px", "button_width": "72px"},
            layout=w.Layout(width="auto"))
        filt.append(self.controls[f + "apply_to"])

        self.link = w.Checkbox(value=True, description="link adjacent V bounds", indent=False,
                               layout=w.Layout(width="auto"))
        self.link.description_tooltip = ("ticked: thin upper = thick lower - 1 and water upper = "
                                          "thin lower - 1 (the V ranges stay disjoint and cover "
                                          "0..255)")
        magenta = hex_colour(UNLABELLED)
        self.allow_gaps = w.Checkbox(value=settings["autolabel.allow_gaps"],
                                     description=ALLOW_GAPS_LABEL, indent=False,
                                     layout=w.Layout(width="auto"))
        self.allow_gaps.description_tooltip = (
            "ticked: colours in no class's range are labelled unlabelled (magenta) and the "
            "later class wins overlaps; needed to narrow an H or S range")
        self.controls["autolabel.allow_gaps"] = self.allow_gaps
        gaps_note = w.HTML(f"<span style='font-size:12px'>gaps shown <b style='color:{magenta}'>"
                           f"magenta</b></span>", layout=w.Layout(margin="0 0 0 6px"))
        self.scene = w.Dropdown(options=[(s.name, i) for i, s in enumerate(self.samples)], value=0,
                                description="scene", style=slider_style,
                                layout=w.Layout(width="100%"))
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.metrics = w.HTML(layout=w.Layout(width="auto", overflow="auto"))
        self.message = w.HTML(layout=w.Layout(width="auto"))
        self.path = w.Text(value="" if write_path is None else _shown(Path(write_path)),
                           description="params file", style={"description_width": "76px"},
                           layout=w.Layout(width="100%"),
                           placeholder="e.g. params/tuned.yml (from the project folder)")
        self.write_button = w.Button(description="Write params", icon="save",
                                     button_style="primary", layout=w.Layout(width="auto"))
        self.reset_button = w.Button(description="Reset", icon="undo",
                                     layout=w.Layout(width="auto"))
        full = w.Layout(width="100%")
        tabs = w.Tab(children=[w.VBox([w.HBox([self.link]),
                                       w.HBox([self.allow_gaps, gaps_note],
                                              layout=w.Layout(align_items="center")),
                                       *class_boxes], layout=full),
                               w.VBox(filt, layout=full)],
                     layout=w.Layout(width="auto"))
        tabs.set_title(0, "HSV ranges")
        tabs.set_title(1, "filter")
        self.tabs = tabs
        controls = w.VBox([self.scene, tabs, self.path,
                           w.HBox([self.write_button, self.reset_button])],
                          layout=w.Layout(width=CONTROLS_WIDTH, flex="0 0 auto",
                                          margin="0 12px 0 0"))
        shown = w.VBox([self.message, self.image, self.metrics],
                       layout=w.Layout(flex="1 1 auto", min_width="0", width="auto"))
        self.widget = w.VBox([w.HBox([controls, shown],
                                     layout=w.Layout(width="auto", align_items="flex-start"))],
                             layout=w.Layout(width="auto"))
        self.widget.add_class("seaice-tuner")
        for key, c in self.controls.items():
            c.add_class("seaice-" + key.replace(".", "-"))
        for part in ("scene", "link", "allow_gaps", "tabs", "message", "image", "metrics", "path",
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
        self.message.value = f"<div style='color:{colour};font-size:13px'>{text}</div>"

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
        self.image.value = figure_to_png(tuner_figure(pv, panel_size=self.panel_size),
                                         dpi=self.dpi)
        self.metrics.value = metrics_html(pv, seconds)
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
            dest = _resolve(target)
            existed = dest.exists()
            with warnings.catch_warnings():   # allowed gaps: said in the message line
                warnings.simplefilter("ignore", UserWarning)
                out = write_tuned_params(self.params, dest)
        except (ParamsError, InputError, OSError) as exc:
            self._say(f"<b>not written:</b> {html.escape(str(exc))}", kind="error")
            return None
        stamp = time.strftime("%H:%M:%S")
        what = "replaced" if existed else "wrote"
        self._say(f"{what} {html.escape(_shown(out))} at {stamp}"
                  + (" (the file that was there is overwritten)" if existed else ""))
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
                panel_size: float = 2.1, dpi: int = 72):
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
