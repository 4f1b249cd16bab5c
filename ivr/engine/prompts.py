"""The prompt catalogue: id -> wording per locale, rendered with money/dates spoken per locale."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ivr.engine import speech
from ivr.errors import FlowError

#: libyaml's loader when available: start-up parses the catalogues ~15x faster
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: the locale a call starts in, and the one used when a call's own is unknown
DEFAULT_LOCALE = "zh-CN"
LOCALES = (DEFAULT_LOCALE, "en-US")


def _format_value(value: Any, spec: str, locale: str, liang: bool) -> str:
    if spec == "money":
        return speech.money(value, locale, liang=liang)
    if spec == "date":
        return speech.date_words(value, locale)
    if spec == "digits":
        return speech.digits(str(value), locale)
    if spec == "name":
        return speech.masked_name(str(value))
    if spec == "count":  # a count of things: 两位, 两笔 (but 十二位, 二十二笔)
        if locale != "zh-CN":
            return str(value)
        return "两" if liang and int(value) == 2 else speech.integer_zh(int(value), liang=liang)
    if spec:
        raise FlowError(f"unknown format {spec!r} (money, date, digits, name, count)")
    return str(value)


class _Formatter(string.Formatter):
    def __init__(self, locale: str, liang: bool) -> None:
        self.locale, self.liang = locale, liang

    def format_field(self, value: Any, format_spec: str) -> str:
        return _format_value(value, format_spec, self.locale, self.liang)


@dataclass(frozen=True)
class Prompt:
    text: str
    locale: str  # the voice it is spoken in (the welcome's English line is en-US in both)
    fields: frozenset[str]


def _fields(text: str) -> frozenset[str]:
    try:
        return frozenset(f for _, f, _, _ in string.Formatter().parse(text) if f)
    except ValueError as exc:
        raise FlowError(f"bad placeholder in {text!r}: {exc}") from None


class Catalogue:
    """All locales' prompts and words, validated to have the same ids and placeholders."""

    def __init__(self, prompts: dict[str, dict[str, Prompt]], words: dict[str, dict[str, str]],
                 liang: bool = True) -> None:
        self.prompts, self.words, self.liang = prompts, words, liang
        self._formatters = {loc: _Formatter(loc, liang) for loc in prompts}

    @classmethod
    def load(cls, folder: Path, *, liang: bool = True) -> Catalogue:
        prompts: dict[str, dict[str, Prompt]] = {}
        words: dict[str, dict[str, str]] = {}
        for locale in LOCALES:
            path = folder / f"{locale}.yaml"
            try:
                doc = yaml.load(path.read_text(encoding="utf-8"), Loader=SafeLoader)
            except (OSError, yaml.YAMLError) as exc:
                raise FlowError(f"{path}: {exc}") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("prompts"), dict):
                raise FlowError(f"{path}: needs a `prompts` mapping")
            entries: dict[str, Prompt] = {}
            for pid, entry in doc["prompts"].items():
                if isinstance(entry, str):
                    text, voice_locale = entry, locale
                elif isinstance(entry, dict) and isinstance(entry.get("text"), str):
                    text, voice_locale = entry["text"], entry.get("locale", locale)
                else:
                    raise FlowError(f"{path}: prompt {pid!r} must be text or {{text, locale}}")
                entries[str(pid)] = Prompt(text.strip(), voice_locale, _fields(text))
            prompts[locale] = entries
            words[locale] = {}
            for group, table in (doc.get("words") or {}).items():
                for key, word in table.items():
                    words[locale][f"{group}.{key}"] = str(word)
        cat = cls(prompts, words, liang)
        cat.validate()
        return cat

    def validate(self) -> None:
        """Every locale has the same prompt ids, placeholders and words."""
        first, *others = LOCALES
        for loc in others:
            a, b = set(self.prompts[first]), set(self.prompts[loc])
            if a != b:
                raise FlowError(f"prompt ids differ between {first} and {loc}: {sorted(a ^ b)}")
            for pid in a:
                fa, fb = self.prompts[first][pid].fields, self.prompts[loc][pid].fields
                if fa != fb:
                    raise FlowError(f"prompt {pid!r}: placeholders {sorted(fa)} in {first} "
                                    f"but {sorted(fb)} in {loc}")
            wa, wb = set(self.words[first]), set(self.words[loc])
            if wa != wb:
                raise FlowError(f"words differ between {first} and {loc}: {sorted(wa ^ wb)}")

    def has(self, pid: str) -> bool:
        return pid in self.prompts[LOCALES[0]]

    def render(self, pid: str, locale: str, values: Mapping[str, Any]) -> tuple[str, str]:
        """(text, voice locale) of prompt `pid`; raises FlowError for a missing id or value."""
        try:
            prompt = self.prompts[locale][pid]
        except KeyError:
            raise FlowError(f"no prompt {pid!r} in {locale}") from None
        try:
            text = self._formatters[locale].vformat(prompt.text, (), values)
        except KeyError as exc:
            raise FlowError(f"prompt {pid!r} needs a value for {exc}") from None
        return text, prompt.locale

    def word(self, group: str, key: str, locale: str) -> str:
        try:
            return self.words[locale][f"{group}.{key}"]
        except KeyError:
            raise FlowError(f"no word {group}.{key} in {locale}") from None

