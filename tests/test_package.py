"""The helper package stays light: importable without TensorFlow, Spark or Horovod."""

import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import seaice_utils

ROOT = Path(__file__).resolve().parent.parent


def test_every_module_imports_without_heavy_frameworks():
    modules = sorted(m.name.removeprefix("seaice_utils.")
                     for m in pkgutil.walk_packages(seaice_utils.__path__, "seaice_utils.")
                     if not m.name.endswith("__main__"))
    code = textwrap.dedent(f"""
        import importlib, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('tensorflow', 'keras', 'pyspark', 'horovod', 'ee'):
                    raise ImportError('blocked ' + name)
        sys.meta_path.insert(0, Block())
        failed = []
        for m in {modules!r}:
            try:
                importlib.import_module('seaice_utils.' + m)
            except ImportError as e:
                failed.append((m, str(e)))
        loaded = [k for k in sys.modules if k.split('.')[0] in ('tensorflow', 'pyspark', 'horovod')]
        print(failed, loaded)
        sys.exit(1 if failed or loaded else 0)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(modules) >= 30


def test_environment_yml_mirrors_requirements_pins():
    import yaml

    pins = {}
    for f in ("requirements-build.txt", "requirements.txt"):
        for line in (ROOT / f).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                name, ver = line.split("==")
                pins[name.lower()] = ver
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    env_pins = {}
    for line in pip:
        if "==" in line:
            name, ver = line.split("==")
            env_pins[name.lower()] = ver
    assert env_pins == pins
    horovod = (ROOT / "requirements-horovod.txt").read_text().split()[0]
    assert horovod in (ROOT / "environment.yml").read_text()   # the documented build step
    assert all("==" in line for line in (ROOT / "requirements.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#"))
