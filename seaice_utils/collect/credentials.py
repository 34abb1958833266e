"""Which Earth Engine credentials are configured here, found offline (nothing is contacted).

The standard ways, in order (nothing secret is ever written to code, params or outputs):

1. a **service-account key** (JSON) named by ``EE_SERVICE_ACCOUNT_KEY`` or
   ``GOOGLE_APPLICATION_CREDENTIALS``; the project is ``EARTHENGINE_PROJECT`` or the key's own;
2. **user credentials** stored once with ``earthengine authenticate`` (in
   ``~/.config/earthengine/credentials``), or Google application default credentials
   (``gcloud auth application-default login``), with the Cloud project registered for Earth Engine
   in ``EARTHENGINE_PROJECT`` (or ``GOOGLE_CLOUD_PROJECT``).

:func:`credential_status` reports which one is set up, by the names of the variables only; it is
what notebook 01's access table shows (:func:`seaice_utils.collect.query.access_rows`) and what
:func:`seaice_utils.collect.earthengine.ee_initialize` uses.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["PROJECT_VARS", "KEY_VARS", "HOW_TO", "credential_status"]

#: Environment variables read for the Cloud project, in order.
PROJECT_VARS = ("EARTHENGINE_PROJECT", "EE_PROJECT", "GOOGLE_CLOUD_PROJECT")
#: Environment variables read for a credentials (key) file, in order.
KEY_VARS = ("EE_SERVICE_ACCOUNT_KEY", "GOOGLE_APPLICATION_CREDENTIALS")
#: What to do to make Earth Engine usable (appended to every "not available" message).
HOW_TO = ("To use Earth Engine: either run `earthengine authenticate` once (or ee.Authenticate() in "
          "a notebook) and set EARTHENGINE_PROJECT to your Earth-Engine-registered Cloud project, "
          "or set EE_SERVICE_ACCOUNT_KEY (or GOOGLE_APPLICATION_CREDENTIALS) to a service-account "
          "JSON key file. Without an account, use data.source: stac.")


def _first(env, names) -> str | None:
    return next((n for n in names if env.get(n)), None)


def _stored_user_credentials(env) -> bool:
    home = Path(env.get("HOME") or Path.home())
    return (home / ".config" / "earthengine" / "credentials").is_file()


def _gcloud_adc(env) -> bool:
    cfg = env.get("CLOUDSDK_CONFIG")
    base = Path(cfg) if cfg else Path(env.get("HOME") or Path.home()) / ".config" / "gcloud"
    return (base / "application_default_credentials.json").is_file()


def credential_status(environ: dict | None = None) -> dict[str, Any]:
    """Which Earth Engine credentials are configured, without contacting anything.

    Returns
    -------
    dict
        ``ready`` (bool), ``method`` (text naming the variable or store used), ``key_var`` and
        ``project_var`` (names of the environment variables, or None), ``project`` (where the
        project comes from, e.g. ``$EARTHENGINE_PROJECT``) and ``problem`` (what is missing).
        Values of the variables are never included.
    """
    env = os.environ if environ is None else environ
    key_var, project_var = _first(env, KEY_VARS), _first(env, PROJECT_VARS)
    out = {"ready": False, "method": None, "key_var": key_var, "project_var": project_var,
           "project": f"${project_var}" if project_var else None, "problem": ""}
    if key_var:
        path = Path(env[key_var]).expanduser()
        if not path.is_file():
            out["problem"] = f"${key_var} is set but does not name a readable file. " + HOW_TO
            return out
        try:
            kind = json.loads(path.read_text()).get("type")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind == "service_account":
            out.update(ready=True, method=f"service-account key file named by ${key_var}")
            if not project_var:
                out["project"] = "the service-account key"
            return out
        if kind is None:
            out["problem"] = f"the file named by ${key_var} is not a JSON credentials file. " + HOW_TO
            return out
        out["method"] = f"credentials file named by ${key_var} ({kind})"
    elif _stored_user_credentials(env):
        out["method"] = "stored Earth Engine user credentials (earthengine authenticate)"
    elif _gcloud_adc(env):
        out["method"] = "Google application default credentials (gcloud)"
    else:
        out["problem"] = "no Earth Engine credentials found. " + HOW_TO
        return out
    if not project_var:
        out["problem"] = ("no Cloud project: set EARTHENGINE_PROJECT to the project registered "
                          "for Earth Engine. " + HOW_TO)
        return out
    out["ready"] = True
    return out
