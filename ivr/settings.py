"""Settings from the environment, in one place, so the web app, CLI and tests agree."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def default_database_url() -> str:
    """A SQLite file in the user's data folder, the same wherever the command is run."""
    path = os.environ.get("IVR_DATABASE")
    if not path:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        path = str(base / "ivr12333" / "ivr12333.sqlite3")
    return f"sqlite:///{path}"


@dataclass
class Settings:
    """Everything an operator can set; env names are IVR_* unless Twilio's own."""

    database_url: str = field(default_factory=default_database_url)
    auth_token: str | None = None
    public_url: str | None = None
    voices: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {
            "zh-CN": ("Polly.Zhiyu", "cmn-CN"),
            "en-US": ("Polly.Joanna", "en-US"),
        }
    )
    zh_liang: bool = True
    gather_timeout: int = 5
    verify_attempts_per_hour: int = 10
    withheld_attempts_per_hour: int = 30  # all withheld callers together
    scrypt_n: int = 2**14

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from IVR_* / TWILIO_* variables, then apply explicit overrides."""
        e = os.environ if env is None else env
        s = cls()
        if e.get("IVR_DATABASE_URL"):
            s.database_url = e["IVR_DATABASE_URL"]
        elif e.get("IVR_DATABASE"):
            s.database_url = f"sqlite:///{e['IVR_DATABASE']}"
        s.auth_token = e.get("TWILIO_AUTH_TOKEN") or None
        s.public_url = (e.get("IVR_PUBLIC_URL") or "").rstrip("/") or None
        for locale, prefix in (("zh-CN", "IVR_VOICE_ZH"), ("en-US", "IVR_VOICE_EN")):
            voice = e.get(prefix) or s.voices[locale][0]
            lang = e.get(prefix + "_LANGUAGE") or s.voices[locale][1]
            s.voices[locale] = (voice, lang)
        if e.get("IVR_ZH_LIANG"):
            s.zh_liang = e["IVR_ZH_LIANG"].lower() not in ("0", "false", "no")
        if e.get("IVR_GATHER_TIMEOUT"):
            s.gather_timeout = int(e["IVR_GATHER_TIMEOUT"])
        if e.get("IVR_VERIFY_ATTEMPTS_PER_HOUR"):
            s.verify_attempts_per_hour = int(e["IVR_VERIFY_ATTEMPTS_PER_HOUR"])
        if e.get("IVR_WITHHELD_ATTEMPTS_PER_HOUR"):
            s.withheld_attempts_per_hour = int(e["IVR_WITHHELD_ATTEMPTS_PER_HOUR"])
        if e.get("IVR_SCRYPT_N"):
            s.scrypt_n = int(e["IVR_SCRYPT_N"])
        for key, value in overrides.items():
            setattr(s, key, value)
        return s
