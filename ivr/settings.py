"""What an operator can set, in one typed object that the web app, the CLI and the tests share.

Each setting has one name, its field here; its environment variable is that name in capitals
with the ``IVR_`` prefix (``gather_timeout`` is ``IVR_GATHER_TIMEOUT``), except Twilio's own
``TWILIO_AUTH_TOKEN``. ``Settings(...)`` is built from its arguments alone and never reads the
environment; only ``Settings.from_env()`` does (pydantic-settings), once, at start-up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from ivr.errors import SettingsError

ENV_PREFIX = "IVR_"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def default_database_url(environ: Mapping[str, str]) -> str:
    """A SQLite file in the user's data folder, the same wherever the command is run."""
    base = Path(environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{base / 'ivr12333' / 'ivr12333.sqlite3'}"


class Settings(BaseModel):
    """Everything an operator can set (see the module's docstring for the variables' names)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True,
                              validate_by_alias=True)

    #: SQLAlchemy URL of the database (from_env's default: a SQLite file in the user's data
    #: folder, or the file IVR_DATABASE names)
    database_url: str
    #: Twilio's auth token: requests must carry its signature (unset: nothing is checked);
    #: kept out of repr(), so logging the settings does not log it
    auth_token: str | None = Field(default=None, validation_alias="TWILIO_AUTH_TOKEN",
                                   repr=False)
    #: a file holding the auth token (kept out of `ps` and of the environment); it wins over
    #: TWILIO_AUTH_TOKEN
    auth_token_file: Path | None = None
    #: the public base URL Twilio calls, when a proxy or tunnel stands in front of the server
    public_url: str | None = None
    #: the Twilio account (AC...) whose REST API moves a queued caller into an agent's room
    account_sid: str | None = None
    #: an API key (SK...) for that REST API; unset: the account's auth token is used
    api_key_sid: str | None = None
    #: the API key's secret; kept out of repr()
    api_key_secret: str | None = Field(default=None, repr=False)
    #: a file holding the API key's secret (kept out of `ps` and of the environment); it wins
    #: over IVR_API_KEY_SECRET
    api_key_secret_file: Path | None = None
    #: where Twilio's REST API is (unset: Twilio's own); the simulator's REST API for local calls
    rest_api_url: str | None = None
    voice_zh: str = "Polly.Zhiyu"
    voice_zh_language: str = "cmn-CN"
    voice_en: str = "Polly.Joanna"
    voice_en_language: str = "en-US"
    #: 两 (True) or 二 (False) before 百/千/万/亿
    zh_liang: bool = True
    #: seconds a menu waits for its key
    gather_timeout: int = Field(default=5, ge=1)
    #: password checks per caller number per hour, across calls
    verify_attempts_per_hour: int = Field(default=10, ge=1)
    #: password checks per hour for all withheld callers together (one class, one limit)
    withheld_attempts_per_hour: int = Field(default=30, ge=1)
    #: places in the agent queue one calling number may hold at once (one number cannot
    #: fill the queue); a caller over it hears so and is back at the main menu
    queue_places_per_number: int = Field(default=2, ge=1)
    #: places in the agent queue all withheld callers together may hold at once
    withheld_queue_places: int = Field(default=5, ge=1)
    #: the file of PIN keys that query passwords are hashed with (ivr/domain/pinkeys.py), kept
    #: out of the database (from_env's default: $XDG_CONFIG_HOME/ivr12333/pin-keys, unless
    #: IVR_PIN_KEY is set)
    pin_key_file: Path | None = None
    #: the PIN keys themselves instead of a file (the file's text); kept out of repr()
    pin_key: str | None = Field(default=None, repr=False)
    #: accept a key file that is not safe as ssh judges its keys (open to its group or others,
    #: owned by another user, in a folder others own or may write), with a warning in the log:
    #: a secrets mount that must be so
    pin_key_permissive: bool = False
    #: what a caller in the agent queue hears between announcements: the URL of an audio file
    #: of 30-60 s (unset: quiet)
    hold_music_url: str | None = None
    #: days an ended call's session row (its CallSid, state and caller number; never its
    #: data or answers) is kept so that replayed webhooks of it still get a hang-up, then purged
    keep_ended_days: int = Field(default=7, ge=1, le=30)
    #: minutes without a webhook after which a call is over (Twilio ends every call within
    #: 4 hours) and sealed like an ended call: its data and answers gone; at least the longest
    #: queue wait a region may set (60 minutes) and half an hour, at most Twilio's 4 hours
    seal_idle_minutes: int = Field(default=240, ge=90, le=240)
    #: days the privacy-free call records (events and summaries) are kept, then purged
    keep_records_days: int = Field(default=400, ge=1, le=3660)
    #: the operators' password for the wallboard (/ops/, HTTP Basic, any user name); unset,
    #: the operators' pages answer 404. Kept out of repr()
    operator_token: str | None = Field(default=None, repr=False)
    #: the supervisors' password for the same pages: they show, besides the operators'
    #: figures, each agent's (agents' ids are the agents' personal data); unset, nobody sees
    #: an agent's id there. Kept out of repr()
    supervisor_token: str | None = Field(default=None, repr=False)
    #: a file holding the supervisors' password (kept out of `ps` and of the environment); it
    #: wins over IVR_SUPERVISOR_TOKEN
    supervisor_token_file: Path | None = None
    #: a folder with zh-CN.yaml and en-US.yaml instead of the bundled prompts
    prompts_dir: Path | None = None
    #: a folder with hotline.yaml instead of the bundled flow
    flows_dir: Path | None = None
    log_level: LogLevel = "INFO"

    @field_validator("auth_token", "public_url", "prompts_dir", "flows_dir", "pin_key_file",
                     "pin_key", "hold_music_url", "account_sid", "api_key_sid", "api_key_secret",
                     "rest_api_url", "operator_token", "supervisor_token", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("auth_token")
    @classmethod
    def _a_token_is_a_key(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[\x21-\x7e]{8,}", value):
            raise ValueError("an auth token is 8 or more printable characters without spaces "
                             "(Twilio's are 32)")
        return value

    @field_validator("account_sid")
    @classmethod
    def _an_account_sid(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"AC[0-9a-f]{32}", value):
            raise ValueError("an Account SID is AC and 32 hex digits")
        return value

    @field_validator("api_key_sid")
    @classmethod
    def _an_api_key_sid(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"SK[0-9a-f]{32}", value):
            raise ValueError("an API key SID is SK and 32 hex digits")
        return value

    @field_validator("operator_token", "supervisor_token")
    @classmethod
    def _a_long_operator_token(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not re.fullmatch(r"[\x21-\x7e]{16,}", value):
            who = "an operator" if info.field_name == "operator_token" else "a supervisor"
            raise ValueError(f"{who} token is 16 or more printable characters without spaces")
        return value

    @model_validator(mode="after")
    def _supervisors_apart(self) -> Settings:
        if self.supervisor_token is not None and self.supervisor_token == self.operator_token:
            raise ValueError("IVR_SUPERVISOR_TOKEN is the operator token: the supervisors' "
                             "password must be their own")
        return self

    @field_validator("public_url", "rest_api_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return (value.rstrip("/") or None) if value is not None else None

    @field_validator("log_level", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().upper() in get_args(LogLevel):
            return value.strip().upper()
        return value

    @property
    def voices(self) -> dict[str, tuple[str, str]]:
        """locale -> (Twilio voice, its language)."""
        return {"zh-CN": (self.voice_zh, self.voice_zh_language),
                "en-US": (self.voice_en, self.voice_en_language)}

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Settings from the IVR_* (and TWILIO_AUTH_TOKEN) environment variables, with
        `overrides` (field names) winning. Raises SettingsError naming each bad variable;
        a blank variable counts as unset."""
        try:
            loaded = _FromEnvironment(**overrides)
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None
        return cls(**loaded.model_dump(exclude={"database"}))


class _FromEnvironment(Settings, BaseSettings):
    """The same fields, read from the environment (init arguments first)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True)

    @model_validator(mode="before")
    @classmethod
    def _token_from_file(cls, data: Any) -> Any:
        path = data.get("auth_token_file") if isinstance(data, dict) else None
        if path:
            try:
                token = Path(path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"{ENV_PREFIX}AUTH_TOKEN_FILE={str(path)!r}: cannot read the "
                                 f"token file ({exc.__class__.__name__})") from None
            data = {k: v for k, v in data.items() if k not in ("auth_token", "TWILIO_AUTH_TOKEN")}
            data["TWILIO_AUTH_TOKEN"] = token or None
        return data

    @model_validator(mode="before")
    @classmethod
    def _api_secret_from_file(cls, data: Any) -> Any:
        return _from_file(data, "api_key_secret", "secret")

    @model_validator(mode="before")
    @classmethod
    def _supervisor_token_from_file(cls, data: Any) -> Any:
        return _from_file(data, "supervisor_token", "token")

    #: IVR_DATABASE: a SQLite file, the shortcut for IVR_DATABASE_URL=sqlite:///FILE
    database: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_database(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("database_url"):
            path = data.get("database")
            url = f"sqlite:///{path}" if path else default_database_url(os.environ)
            data = {**data, "database_url": url}
        return data

    @model_validator(mode="before")
    @classmethod
    def _default_pin_key_file(cls, data: Any) -> Any:
        if isinstance(data, dict) and not _given(data.get("pin_key_file")) \
                and not _given(data.get("pin_key")):
            data = {**data, "pin_key_file": default_pin_key_file(os.environ)}
        return data


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def default_pin_key_file(environ: Mapping[str, str]) -> Path:
    """$XDG_CONFIG_HOME/ivr12333/pin-keys: apart from the database's folder (~/.local/share),
    so a copy of the data folder holds no key."""
    base = Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "ivr12333" / "pin-keys"


def env_name(field: str) -> str:
    """The environment variable of a field (an alias is a variable's name already)."""
    info = Settings.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias
    return field if field.isupper() else ENV_PREFIX + field.upper()


def _describe(exc: ValidationError) -> str:
    """One line for them all, a part per bad variable: its name, what it holds (never the
    token) and what is wrong."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = env_name(field) if field else "settings"
        value = error.get("input")
        secret = name in ("TWILIO_AUTH_TOKEN", env_name("pin_key"), env_name("api_key_secret"),
                          env_name("operator_token"), env_name("supervisor_token"))
        shown = f"={value!r}" if isinstance(value, str) and not secret else ""
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{name}{shown}: {message}")
    return "; ".join(lines)


def _from_file(data: Any, name: str, what: str) -> Any:
    """`name` read from the file `<name>_file` names, when given (it wins over `name`)."""
    path = data.get(f"{name}_file") if isinstance(data, dict) else None
    if not path:
        return data
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}_FILE={str(path)!r}: cannot read the "
                         f"{what} file ({exc.__class__.__name__})") from None
    return {**data, name: value or None}
