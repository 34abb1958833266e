"""Notebook 02's threshold tuner as a person uses it: JupyterLab from the project's environment,
the operating system's Chromium driven by Playwright, a 1280 px window with the side bar open.

The committed notebook is copied, byte for byte, into the test's temporary folder (next to a small
``params/quick.yml``, so its ``../params/quick.yml`` is a 2-scene profile) and opened there; the
committed files are never touched. Chromium comes from the OS packages (Debian: ``chromium``):
installed here when missing and the test runs as root with apt, else the test is skipped with
the command that installs it. JupyterLab, its kernel and Chromium are ended by their own process
ids. Screenshots go to the test's temporary folder; the two at 1280 px before and after a slider
change are also copied to the system temporary folder (``tuner_before.png``, ``tuner_after.png``)
and the measured update latency is printed (and written to ``tuner_latency.txt`` there).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "02_filter_tuning.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
WIDTH, HEIGHT = 1280, 800
#: The profile the copied notebook reads as ../params/quick.yml: the quick profile's filter,
#: HSV ranges and 512 px previews, on two 512 px scenes (fast to make).
PROFILE = """\
global: {profile: browser-test, seed: 0, progress: true}
data: {source: synthetic, n_scenes: 2, scene_size: 512, cloudy_fraction: 0.5,
       nodata_wedge_fraction: 0.5}
tuning: {scenes: 2, preview_size: 512, preview_mode: crop, write_params: null}
"""

#: Console warnings that are JupyterLab's own and harmless: the browser's locale (en-US) has no
#: language pack (JupyterLab ships English only), so it falls back to English.
BENIGN_WARNINGS = ("Language pack 'en_US' not installed!",)

pytestmark = pytest.mark.slow


# ----------------------------------------------------------------------------- set-up
def _chromium() -> Path:
    """The system Chromium; installed with apt when missing and allowed (root), else skip."""
    if CHROMIUM.is_file():
        return CHROMIUM
    install = "apt-get install -y chromium"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=180)
            r = subprocess.run(install.split() + ["-qq"], env=env, capture_output=True, text=True,
                               timeout=420)
        except subprocess.TimeoutExpired as e:
            pytest.skip(f"Chromium is not installed and '{install}' did not finish: {e}")
        if CHROMIUM.is_file():
            return CHROMIUM
        pytest.skip(f"Chromium is not installed and '{install}' failed: {r.stderr[-500:]}")
    pytest.skip(f"Chromium is not installed: run 'sudo {install}' (Debian) to run this test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _end(pids: list[int]) -> None:
    """SIGTERM the given processes (each by its id), then SIGKILL those still there after 10 s."""
    import psutil

    procs = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            p.send_signal(signal.SIGTERM)
            procs.append(p)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


@pytest.fixture
def project(tmp_path) -> Path:
    """A throw-away project folder: the committed notebook 02 (copied unchanged), a small
    profile where it looks for one, and an empty outputs folder."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "params").mkdir()
    (root / "outputs").mkdir()
    shutil.copyfile(NOTEBOOK, root / "notebooks" / NOTEBOOK.name)
    (root / "params" / "quick.yml").write_text(PROFILE)
    return root


@pytest.fixture
def lab(project, tmp_path):
    """JupyterLab of this environment on 127.0.0.1 (free port, no token) serving ``project``;
    yields its base URL, and ends it and its kernels by their process ids."""
    import psutil

    port = _free_port()
    home = tmp_path / "jupyter"
    env = {**os.environ,
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "JUPYTER_PLATFORM_DIRS": "1"}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={project}", "--LabApp.news_url=",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (tmp_path / "jupyterlab.log").open("w")
    proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/api/status", timeout=2) as r:
                    json.load(r)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start:\n" +
                                (tmp_path / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.25)
        yield url
    finally:
        try:
            kids = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            kids = []
        _end([proc.pid])          # the server shuts its kernels down on SIGTERM ...
        _end(kids)                # ... and any it left are ended by their own ids
        log.close()


@pytest.fixture
def browser(tmp_path):
    """The system Chromium through Playwright (``executable_path``); ended by its process id."""
    import psutil

    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright is a test requirement: "
                                          "pip install -r requirements.txt")
    exe = _chromium()
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    pw = sync_api.sync_playwright().start()
    b = None
    chromium_pids: list[int] = []
    try:
        b = pw.chromium.launch(executable_path=str(exe), args=CHROMIUM_ARGS, headless=True)
        for p in psutil.Process().children(recursive=True):
            try:
                if p.pid not in before and "chromium" in p.name():
                    parent = p.parent()
                    if parent is None or "chromium" not in parent.name():
                        chromium_pids.append(p.pid)          # the browser's main process
            except psutil.NoSuchProcess:
                pass
        assert chromium_pids, "could not find the Chromium process Playwright started"
        yield b
    finally:
        if b is not None:
            try:
                b.close()
            except Exception:  # noqa: BLE001 - ended by its pid below anyway
                pass
        _end(chromium_pids)
        pw.stop()


# ----------------------------------------------------------------------------- page helpers
#: Every visible value label (readout) of the tuner must lie inside the window and inside every
#: ancestor that clips (overflow other than visible), show its whole text, and nothing inside the
#: notebook may scroll sideways.
_LAYOUT_JS = """
(root) => {
  const bad = [], seen = [];
  const vw = document.documentElement.clientWidth;
  for (const el of root.querySelectorAll('.widget-readout')) {
    if (el.offsetParent === null) continue;                 // on a hidden tab or folded away
    const slider = el.closest('.widget-slider');
    const name = slider ? slider.className.match(/seaice-[\\w-]+/)[0] : '?';
    const r = el.getBoundingClientRect();
    seen.push([name, el.textContent.trim(), Math.round(r.left), Math.round(r.right)]);
    if (r.width < 16 || r.height < 10) bad.push(name + ': value label has no room');
    if (r.left < 0 || r.right > vw + 0.5) bad.push(name + ': value label outside the window');
    if (el.scrollWidth > el.clientWidth + 1) bad.push(name + ': value text cut');
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.overflowX === 'visible' && cs.overflowY === 'visible') continue;
      const ar = a.getBoundingClientRect();
      if (r.left < ar.left - 0.5 || r.right > ar.right + 0.5)
        bad.push(name + ': value label [' + Math.round(r.left) + ', ' + Math.round(r.right) +
                 '] clipped by ' + (a.className || a.tagName) + ' [' + Math.round(ar.left) +
                 ', ' + Math.round(ar.right) + ']');
    }
  }
  for (let a = root; a && !a.classList.contains('jp-Notebook'); a = a.parentElement) {
    const cs = getComputedStyle(a);
    if (['auto', 'scroll'].includes(cs.overflowX) && a.scrollWidth > a.clientWidth + 1)
      bad.push('scrolls sideways: ' + (a.className || a.tagName));
  }
  return {seen, bad};
}
"""

#: Every visible control label (slider descriptions, tab titles, fold titles, check boxes) shows
#: its whole text; slider tracks give at most 2 values per pixel; the preview's text is >= 11 px
#: (its PNG is shown at its own size, 72 dpi, titles 11.5 pt).
_LABELS_JS = """
(root) => {
  const bad = [], seen = [];
  const sel = '.widget-label, .lm-TabBar-tabLabel, .jupyter-widget-Collapse-header span, ' +
              '.widget-checkbox label';
  for (const el of root.querySelectorAll(sel)) {
    if (el.offsetParent === null || !el.textContent.trim()) continue;
    seen.push(el.textContent.trim());
    if (el.scrollWidth > el.clientWidth + 1) bad.push('label cut: ' + el.textContent.trim());
  }
  for (const s of root.querySelectorAll('.widget-slider')) {
    if (s.offsetParent === null) continue;
    const track = s.querySelector('.slider-container, .noUi-target');
    const name = s.className.match(/seaice-[\\w-]+/)[0];
    const w = track.getBoundingClientRect().width;
    const h = s.querySelector('.noUi-handle');
    const span = Number(h.getAttribute('aria-valuemax')) - Number(h.getAttribute('aria-valuemin'));
    if (span / w > 2) bad.push(name + ': track ' + Math.round(w) + ' px for ' + span);
  }
  const img = root.querySelector('.seaice-tuner-image');
  if (img.getBoundingClientRect().width < img.naturalWidth - 1)
    bad.push('preview scaled down: ' + img.getBoundingClientRect().width + ' < ' + img.naturalWidth);
  return {seen, bad};
}
"""

#: The preview image and the fraction table lie wholly inside the notebook's visible area.
_IN_VIEW_JS = """
(root) => {
  const outer = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
  const o = outer.getBoundingClientRect(), bad = [];
  for (const part of ['.seaice-tuner-image', '.seaice-tuner-metrics', '.seaice-tuner-message']) {
    const r = root.querySelector(part).getBoundingClientRect();
    if (r.top < o.top - 0.5 || r.bottom > o.bottom + 0.5)
      bad.push(part + ' [' + Math.round(r.top) + ', ' + Math.round(r.bottom) + '] outside [' +
               Math.round(o.top) + ', ' + Math.round(o.bottom) + ']');
  }
  return bad;
}
"""

_IMAGE_JS = """
async (img) => {
  const buf = await (await fetch(img.src)).arrayBuffer();
  return Array.from(new Uint8Array(buf));
}
"""

_METRICS_JS = """
(el) => Object.fromEntries(Array.from(el.querySelectorAll('tr')).slice(1).map(
  tr => [tr.cells[0].textContent.trim(), tr.cells[tr.cells.length - 1].textContent.trim()]))
"""


def _scroll_to(page, locator) -> None:
    """Scroll the notebook down (as with the mouse wheel) until ``locator`` is shown: JupyterLab
    does not lay out cells that are out of view."""
    outer = page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer").first
    outer.evaluate("o => o.scrollTo(0, 0)")
    for _ in range(100):
        page.wait_for_timeout(100)
        if locator.is_visible():
            locator.scroll_into_view_if_needed()
            return
        outer.evaluate("o => o.scrollBy(0, o.clientHeight / 2)")
    raise AssertionError(f"{locator} is not shown after scrolling the notebook")


def _setting(tuner, key: str):
    return tuner.locator(".seaice-" + key.replace(".", "-"))


def _value(tuner, key: str) -> int:
    return int(_setting(tuner, key).locator(".widget-readout").inner_text().strip())


def _image_digest(tuner) -> str:
    data = tuner.locator(".seaice-tuner-image").evaluate(_IMAGE_JS)
    assert bytes(data[:8]) == b"\x89PNG\r\n\x1a\n"
    return hashlib.sha256(bytes(data)).hexdigest()


def _type_value(page, tuner, key: str, value: int) -> None:
    """Type an exact bound into a slider's value label, as a person would (then Enter)."""
    readout = _setting(tuner, key).locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(value))
    page.keyboard.press("Enter")


def _wait_new_image(tuner, old_src: str) -> None:
    """Wait (checking every frame) until the preview <img> shows a new picture."""
    tuner.locator(".seaice-tuner-image").evaluate(
        "(img, old) => new Promise(ok => { const check = () => img.src !== old ? ok() : "
        "requestAnimationFrame(check); check(); })", old_src)


def _api(lab: str, path: str):
    with urllib.request.urlopen(lab + path, timeout=10) as r:
        return json.load(r)


def _kernel_of(lab: str, name: str) -> str | None:
    """The id of the kernel JupyterLab runs for the notebook ``name``, if any."""
    for s in _api(lab, "/api/sessions"):
        if s["path"].endswith(name) and s.get("kernel"):
            return s["kernel"]["id"]
    return None


def _reopen_saved(page, lab: str, tab, shots: Path) -> dict:
    """Save the notebook with Ctrl+S, close it with *File > Close and Shut Down Notebook*, check
    its kernel is gone, then load JupyterLab afresh on the notebook and wait for its new kernel.
    Returns what was saved: the widget-state size and the kernel ids before and after."""
    widget_plugin = "@jupyter-widgets/jupyterlab-manager:plugin"
    setting = _api(lab, "/lab/api/settings/" + widget_plugin)
    save_state = setting["settings"].get("saveState",
                                         setting["schema"]["properties"]["saveState"]["default"])
    assert save_state is True, (
        f"JupyterLab's widget-state saving is off ({widget_plugin} saveState): the environment "
        "lacks .venv/share/jupyter/lab/settings/overrides.json; run 'make venv' (Makefile)")
    old_kernel = _kernel_of(lab, NOTEBOOK.name)
    assert old_kernel
    tab.click()                                   # focus on the notebook, not a widget box
    page.keyboard.press("Control+s")
    page.wait_for_function("t => !t.classList.contains('jp-mod-dirty')", arg=tab.element_handle())
    path = f"/api/contents/notebooks/{NOTEBOOK.name}"
    meta = _api(lab, path)["content"]["metadata"]
    state = meta.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    assert state.get("state"), f"the saved notebook carries no widget state: {sorted(meta)}"
    page.locator(".lm-MenuBar-item", has_text="File").first.click()
    page.locator(".lm-Menu-item", has_text="Close and Shut Down Notebook").click()
    page.locator(".jp-Dialog .jp-mod-accept").click()
    tab.wait_for(state="detached")
    deadline = time.monotonic() + 30
    while (_kernel_of(lab, NOTEBOOK.name)
           or old_kernel in {k["id"] for k in _api(lab, "/api/kernels")}):
        assert time.monotonic() < deadline, "the notebook's kernel was not shut down"
        time.sleep(0.25)
    page.screenshot(path=shots / "closed.png")
    page.goto(f"{lab}/lab/tree/notebooks/{NOTEBOOK.name}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.locator(".jp-Toolbar-kernelName").get_by_text("Python 3 (ipykernel)").wait_for()
    deadline = time.monotonic() + 60
    while not (new_kernel := _kernel_of(lab, NOTEBOOK.name)):
        assert time.monotonic() < deadline, "no kernel was started for the reopened notebook"
        time.sleep(0.25)
    assert new_kernel != old_kernel
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    return {"widget models saved": len(state["state"]), "kernel": (old_kernel, new_kernel)}


def _dead_widgets(page) -> list[str]:
    """Scroll the whole notebook (JupyterLab lays out only the cells in view) and return every
    output that says a widget could not be shown."""
    outer = page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer").first
    outer.evaluate("o => o.scrollTo(0, 0)")
    found: set[str] = set()
    for _ in range(200):
        page.wait_for_timeout(150)
        found.update(page.locator(".jp-OutputArea-output").evaluate_all(
            "els => els.map(e => e.textContent).filter(t => /model not found|Error displaying "
            "widget/.test(t)).map(t => t.trim().slice(0, 200))"))
        if outer.evaluate("o => o.scrollTop + o.clientHeight >= o.scrollHeight - 1"):
            break
        outer.evaluate("o => o.scrollBy(0, o.clientHeight / 2)")
    if "model not found" in page.locator("body").inner_text():
        found.add("'model not found' in the page")
    return sorted(found)


# ----------------------------------------------------------------------------- the test
def test_tuner_in_a_real_browser(project, lab, browser, tmp_path):
    committed = NOTEBOOK.read_bytes()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    console: list[str] = []
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page = context.new_page()
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}")
            if m.type == "error" or (m.type == "warning" and m.text not in BENIGN_WARNINGS)
            else None)
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.set_default_timeout(60_000)

    page.goto(f"{lab}/lab/tree/notebooks/{NOTEBOOK.name}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    # the kernel has started and told JupyterLab its kernelspec and language_info
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    page.locator(".jp-Toolbar-kernelName").get_by_text("Python 3 (ipykernel)").wait_for()
    page.wait_for_timeout(1000)
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=NOTEBOOK.name)
    page.screenshot(path=shots / "opened.png")
    assert "jp-mod-dirty" not in (tab.get_attribute("class") or ""), (
        "the untouched notebook is marked changed on opening: its committed kernel metadata "
        "is not what JupyterLab writes")

    # the side bar (file browser) is open, as for a person who just started `make lab`
    sidebar = page.locator("#filebrowser")
    if not sidebar.is_visible():
        page.locator(".jp-SideBar.jp-mod-left [data-id='filebrowser']").click()
    assert sidebar.is_visible() and sidebar.bounding_box()["width"] > 150

    # the news question in the corner would cover the tuner's last row: answer it
    no_news = page.locator(".jp-toast-button", has_text="No")
    if no_news.count():
        no_news.first.click()

    # Run > Run All Cells
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
    tuner = page.locator(".seaice-tuner")
    tuner.wait_for(state="attached", timeout=120_000)
    page.locator(".jp-OutputArea-output pre", has_text="tuned profile written to").wait_for(
        state="attached", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    _scroll_to(page, tuner)
    assert page.locator(".jp-OutputArea-output", has_text="Error displaying widget").count() == 0

    # the sliders are widgets: 6 per class (V, H, S bounds) and 5 filter constants
    assert tuner.locator(".widget-slider").count() == 23
    assert tuner.locator(".jupyter-widgets.widget-tab").count() == 1
    assert "settings valid" in tuner.locator(".seaice-tuner-message").inner_text()

    # 1280 px, side bar open: every value label readable, in every tab and fold
    tuner.scroll_into_view_if_needed()
    page.screenshot(path=shots / "tuner.png")
    seen = []
    layout = tuner.evaluate(_LAYOUT_JS)
    assert not layout["bad"], "\n".join(layout["bad"])
    seen += layout["seen"]
    folds = tuner.locator(".jupyter-widget-Collapse-header")
    assert folds.count() == 3
    folds.nth(1).click()                                           # thin ice: H and S
    _setting(tuner, "autolabel.thin.upper.S").wait_for()
    layout = tuner.evaluate(_LAYOUT_JS)
    assert not layout["bad"], "\n".join(layout["bad"])
    seen += layout["seen"]
    assert {"seaice-autolabel-thin-lower-H", "seaice-autolabel-thin-upper-S",
            "seaice-autolabel-water-upper-V"} <= {name for name, *_ in seen}, seen
    page.screenshot(path=shots / "hsv_folds_open.png")
    labels = tuner.evaluate(_LABELS_JS)
    assert not labels["bad"], "\n".join(labels["bad"])
    assert {"V lower", "H upper", "allow gaps", "HSV ranges", "filter"} <= set(labels["seen"])
    folds.nth(1).click()                                           # folded again
    _setting(tuner, "autolabel.thin.upper.S").wait_for(state="hidden")

    # -- a V bound, typed into its value label: the preview, agreement and linked bound follow
    tuner.locator(".seaice-tuner-tabs .lm-TabBar-tab", has_text="HSV ranges").click()
    tuner.locator(".seaice-tuner-image").scroll_into_view_if_needed()
    _setting(tuner, "autolabel.thin.upper.V").scroll_into_view_if_needed()
    page.screenshot(path=shots / "before.png")
    img = tuner.locator(".seaice-tuner-image")
    src, digest = img.get_attribute("src"), _image_digest(tuner)
    agreement = tuner.locator(".seaice-tuner-metrics").evaluate(_METRICS_JS)
    assert _value(tuner, "autolabel.thin.upper.V") == 204
    assert _value(tuner, "autolabel.thick.lower.V") == 205
    readout = _setting(tuner, "autolabel.thin.upper.V").locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("235")
    t0 = time.perf_counter()
    page.keyboard.press("Enter")
    _wait_new_image(tuner, src)
    latency_v = time.perf_counter() - t0
    page.screenshot(path=shots / "after.png")
    # one screen: the controls, the preview and its fraction table, without scrolling
    assert not tuner.evaluate(_IN_VIEW_JS), tuner.evaluate(_IN_VIEW_JS)
    assert _image_digest(tuner) != digest
    assert _value(tuner, "autolabel.thin.upper.V") == 235
    assert _value(tuner, "autolabel.thick.lower.V") == 236          # linked bound followed
    after = tuner.locator(".seaice-tuner-metrics").evaluate(_METRICS_JS)
    assert after["no filter"] != agreement["no filter"], (agreement, after)

    # -- a filter constant, dragged with the mouse on its slider
    tuner.locator(".seaice-tuner-tabs .lm-TabBar-tab", has_text="filter").click()
    handle = _setting(tuner, "filter.water_v_max").locator(".noUi-handle")
    handle.scroll_into_view_if_needed()
    layout = tuner.evaluate(_LAYOUT_JS)
    assert not layout["bad"], "\n".join(layout["bad"])
    assert len(layout["seen"]) == 5, layout
    labels = tuner.evaluate(_LABELS_JS)
    assert not labels["bad"], "\n".join(labels["bad"])
    assert {"median kernel", "thick threshold", "water V max"} <= set(labels["seen"])
    page.screenshot(path=shots / "filter_tab.png")
    box = handle.bounding_box()
    src, digest = img.get_attribute("src"), _image_digest(tuner)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2, steps=8)
    t0 = time.perf_counter()
    page.mouse.up()
    _wait_new_image(tuner, src)
    latency_f = time.perf_counter() - t0
    water_v_max = _value(tuner, "filter.water_v_max")
    assert water_v_max > 30
    assert _image_digest(tuner) != digest
    after2 = tuner.locator(".seaice-tuner-metrics").evaluate(_METRICS_JS)
    assert after2["filter"] != after["filter"], (after, after2)

    # -- an invalid combination: reported in the message line in the tuner's words
    tuner.locator(".seaice-tuner-tabs .lm-TabBar-tab", has_text="HSV ranges").click()
    src = img.get_attribute("src")
    _type_value(page, tuner, "autolabel.water.lower.V", 40)        # water: lower 40 > upper 30
    message = tuner.locator(".seaice-tuner-message")
    message.get_by_text("invalid").wait_for()                     # (visible: wait_for's default)
    text = message.inner_text()
    assert "open water: its 'V lower' bound (40) is above its 'V upper' bound (30)" in text, text
    assert "must be {" not in text and "autolabel." not in text
    page.screenshot(path=shots / "invalid.png")
    assert img.get_attribute("src") == src                          # keeps the last valid one
    _type_value(page, tuner, "autolabel.water.lower.V", 0)
    message.get_by_text("settings valid").wait_for()

    # -- an H range narrowed: a gap, said with what to do in the tuner; 'allow gaps' makes it valid
    folds.nth(1).click()
    _setting(tuner, "autolabel.thin.lower.H").wait_for()
    _type_value(page, tuner, "autolabel.thin.lower.H", 20)
    message.get_by_text("invalid").wait_for()
    text = message.inner_text()
    assert "tick 'allow gaps'" in text and "autolabel." not in text, text
    page.screenshot(path=shots / "h_gap_invalid.png")
    src = img.get_attribute("src")
    tuner.locator(".seaice-tuner-allow-gaps input").check()
    _wait_new_image(tuner, src)
    assert "invalid" not in message.inner_text()
    page.screenshot(path=shots / "h_gap_allowed.png")
    folds.nth(1).click()

    # -- write params to a path typed into the box; the file is a valid profile
    target = tmp_path / "tuned_in_browser.yml"
    tuner.locator(".seaice-tuner-path input").fill(str(target))
    tuner.locator(".seaice-tuner-path input").press("Enter")
    tuner.locator(".seaice-tuner-write-button").click()
    message.get_by_text("wrote").wait_for()
    tuner.locator(".seaice-tuner-write-button").click()
    message.get_by_text("replaced").wait_for()
    from seaice_utils.params import load_params

    written = load_params(target)
    assert written["autolabel"]["allow_gaps"] is True
    assert written["autolabel"]["thin"]["lower"][0] == 20
    assert written["autolabel"]["thin"]["upper"][2] == 235
    assert written["autolabel"]["thick"]["lower"][2] == 236
    assert written["filter"]["water_v_max"] == water_v_max
    assert written["tuning"]["write_params"] is None

    page.screenshot(path=shots / "final.png")

    # -- the next day: save (Ctrl+S), close the notebook and shut its kernel down, open it again
    #    (a fresh JupyterLab page and a new kernel). The saved widget state shows the last tuner
    #    as a static view: no "model not found", no console error.
    saved = _reopen_saved(page, lab, tab, shots)
    console_before = len(console)
    reopened = page.locator(".seaice-tuner")
    _scroll_to(page, reopened)
    reopened.locator(".seaice-tuner-image").scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    page.screenshot(path=shots / "reopened.png")
    assert reopened.count() == 1
    assert _value(reopened, "autolabel.thin.upper.V") == 235         # the last state, as saved
    assert _value(reopened, "autolabel.thick.lower.V") == 236
    assert reopened.locator(".seaice-tuner-allow-gaps input").is_checked()
    assert reopened.locator(".seaice-tuner-image").evaluate("img => img.naturalWidth") > 0
    dead = _dead_widgets(page)
    assert not dead, f"reopened notebook ({saved}): " + "\n".join(dead)
    assert not console[console_before:], "browser console after reopening:\n" + "\n".join(
        console[console_before:])

    # -- the committed notebook is untouched; the console is clean
    assert NOTEBOOK.read_bytes() == committed
    context.close()
    out = Path(tempfile.gettempdir())
    shutil.copyfile(shots / "before.png", out / "tuner_before.png")
    shutil.copyfile(shots / "after.png", out / "tuner_after.png")
    note = (f"tuner update latency (change to new preview image, {WIDTH} px window): "
            f"V bound typed {latency_v:.2f} s, filter slider dragged {latency_f:.2f} s")
    (out / "tuner_latency.txt").write_text(note + "\n")
    print(note)
    assert not console, "browser console:\n" + "\n".join(console)
    assert latency_v < 10 and latency_f < 10, note
