"""What a scripted call's `expect_prompt: ID` means for this hotline: the wording of prompt ID
in the catalogue, in the locale whose voice speaks the language the caller heard.

The simulator knows nothing of the hotline: its runner takes this as `prompts=` (a
simulator.PromptResolver). A <Say>'s `language` attribute comes from the voices setting
(zh-CN -> cmn-CN, en-US -> en-US by default), so a Mandarin call is checked against zh-CN's
wording and an English one against en-US's. Placeholders are filled with the script's
`values:` as written (the words the caller hears: "2023年1月10日", "0 0 1 3"), not formatted
again: the script pins the data, the catalogue the wording. A placeholder without a value
matches any words.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.engine.prompts import LOCALES, Catalogue
from ivr.resources import data_dir
from ivr.settings import Settings

if TYPE_CHECKING:  # the simulator package loads its HTTP transport: only when a call is placed
    from simulator import Wording


def wording(text: str, values: Mapping[str, str]) -> Wording:
    """A prompt's text with each placeholder replaced by its value as it is (no money, date or
    name format), or a hole (any words) where no value is given."""
    from simulator import Wording

    parts = [""]
    for literal, field, _spec, _conversion in string.Formatter().parse(text):
        parts[-1] += literal
        if field is None:
            continue
        if field in values:
            parts[-1] += values[field]
        else:
            parts.append("")
    return Wording(tuple(parts))


class HotlinePrompts:
    """A prompt resolver for scripted calls, from the hotline's catalogue and voices."""

    def __init__(self, catalogue: Catalogue, voices: Mapping[str, tuple[str, str]],
                 folder: Path | None = None) -> None:
        self.catalogue = catalogue
        self.voices = dict(voices)
        self.folder = folder

    @classmethod
    def load(cls, settings: Settings | None = None) -> HotlinePrompts:
        """The catalogue and voices the app with `settings` speaks with (default: the bundled
        prompts and the default voices; nothing is read from the environment)."""
        settings = settings or Settings(database_url="sqlite://")
        folder = data_dir("prompts", settings.prompts_dir)
        return cls(Catalogue.load(folder, liang=settings.zh_liang), settings.voices, folder)

    def __call__(self, prompt_id: str, values: Mapping[str, str],
                 language: str | None) -> list[Wording]:
        """Prompt `prompt_id`'s wording(s) as spoken in the <Say> `language` (None: in any);
        LookupError for an unknown id, or a value the prompt has no placeholder for."""
        if not self.catalogue.has(prompt_id):
            raise LookupError(f"no prompt {prompt_id!r} in the catalogue ({self.folder})")
        found: list[Wording] = []
        for locale in LOCALES:
            prompt = self.catalogue.prompts[locale][prompt_id]
            unknown = sorted(set(values) - prompt.fields)
            if unknown:
                has = ", ".join(sorted(prompt.fields)) or "none"
                raise LookupError(f"prompt {prompt_id} has no placeholder {', '.join(unknown)} "
                                  f"(its placeholders: {has})")
            if language is not None and self.voices[prompt.locale][1] != language:
                continue
            said = wording(prompt.text, values)
            if said not in found:
                found.append(said)
        return found
