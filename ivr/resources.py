"""Find the data folders (prompts, flows, demo data) from a checkout, a wheel or an override."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

_OVERRIDES = {"prompts": "IVR_PROMPTS_DIR", "state_machines": "IVR_FLOWS_DIR"}


def data_dir(name: str) -> Path:
    """Return the folder `name` (prompts or state_machines), honouring the operator override."""
    override = os.environ.get(_OVERRIDES[name])
    if override:
        return Path(override)
    packaged = Path(str(resources.files("ivr"))) / "_data" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name


def demo_dataset() -> Path:
    """The bundled synthetic demo dataset (ships inside the package)."""
    return Path(str(resources.files("ivr"))) / "data" / "demo" / "demo.json"
