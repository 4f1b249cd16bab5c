"""Find the data folders (prompts, flows, demo data) from a checkout, a wheel or an override."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def data_dir(name: str, override: Path | None = None) -> Path:
    """The folder `name` (prompts or state_machines): `override` when given (the operator's
    prompts_dir or flows_dir setting), else the packaged one, else the checkout's."""
    if override is not None:
        return override
    packaged = Path(str(resources.files("ivr"))) / "_data" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name


def demo_dataset() -> Path:
    """The bundled synthetic demo dataset (ships inside the package)."""
    return Path(str(resources.files("ivr"))) / "dataset" / "demo" / "demo.json"
