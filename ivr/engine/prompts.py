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
from schemacheck import Place, formats_of

#: libyaml's loader when available: start-up parses the catalogues ~15x faster
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: the locale a call starts in, and the one used when a call's own is unknown
DEFAULT_LOCALE = "zh-CN"
LOCALES = (DEFAULT_LOCALE, "en-US")
#: the format specs a placeholder may carry: {amount:money} (the schema's pattern names them)
FORMAT_SPECS = ("money", "date", "digits", "name", "count")
#: the catalogue's format: ivr/engine/formats/prompts.schema.json (docs/schemas/)
SCHEMA = "prompts"


def _format_value(value: Any, spec: str, locale: str, liang: bool) -> str:
    if spec == "money":
        return speech.money(value, locale, liang=liang)
    if spec == "date":
        return speech.date_words(value, locale)
    if spec == "digits":
        return speech.digits(str(value), locale)
    if spec == "name":
        # the surname and a title (李先生, "Mr Li"): a masked name reads as 星号 or another name
        return speech.spoken_name(value if isinstance(value, speech.Named) else str(value),
                                  locale)
    if spec == "count":  # a count of things: 两位, 两笔 (but 十二位, 二十二笔)
        if locale != "zh-CN":  # "four family members", not "4 family members"
            return speech.integer_en(int(value))
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


#: catalogue texts that have the format (every app loads the catalogues: check each text once)
_CHECKED: set[str] = set()


def _check(path: Path, text: str, doc: object) -> None:
    """FlowError naming the file, the place (prompt id, word) and the rule, one line each."""
    if text in _CHECKED:
        return
    found = formats_of("ivr.engine").problems(SCHEMA, doc)
    if found:
        rules: dict[str, list[str]] = {}  # place -> its rules, in the file's order
        for problem in found:
            rules.setdefault(_place(problem.place), []).append(problem.rule)
        raise FlowError("\n".join(f"{path}{place}: {'; '.join(broken)}"
                                   for place, broken in rules.items()))
    _CHECKED.add(text)


def _place(place: Place) -> str:
    """`, prompt goodbye`, `, word relation.husband`, `, words` … ('' for the whole file)."""
    if len(place) >= 2 and place[0] == "prompts":
        return f", prompt {place[1]}"
    if len(place) >= 3 and place[0] == "words":
        return f", word {place[1]}.{place[2]}"
    return ", " + " ".join(str(part) for part in place) if place else ""


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
                text = path.read_text(encoding="utf-8")
                doc = yaml.load(text, Loader=SafeLoader)
            except (OSError, yaml.YAMLError) as exc:
                raise FlowError(f"{path}: {exc}") from None
            _check(path, text, doc)
            entries: dict[str, Prompt] = {}
            for pid, entry in doc["prompts"].items():
                if isinstance(entry, str):
                    wording, voice_locale = entry, locale
                else:
                    wording, voice_locale = entry["text"], entry.get("locale", locale)
                entries[pid] = Prompt(wording.strip(), voice_locale, _fields(wording))
            prompts[locale] = entries
            words[locale] = {
                f"{group}.{key}": word
                for group, table in (doc.get("words") or {}).items()
                for key, word in table.items()
            }
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

