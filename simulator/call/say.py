"""<Say>, <Play>, <Pause>: sounds, their loops, and time passing while they play (on hold,
another call or the caller's deadline may cut a sound short)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from simulator import transcript as kind
from simulator.call.state import Cut, Redirected, Sound
from simulator.call.webhooks import Webhooks
from simulator.clock import SECONDS_PER_PLAY
from simulator.sounds import digits_seconds, render_say, valid_digits
from simulator.transcript import Utterance
from simulator.twiml import count_attr, number_attr, text_of

MANY_LOOPS = 3  # how many repetitions loop="0" ("until the call moves on") is simulated as
SOUND_VERBS = ("Say", "Play", "Pause")


class Sounds(Webhooks):
    """What the caller hears, and the time it takes."""

    def _say_play_pause(self, verb: Element) -> None:
        self._play(self._sounds(verb))

    def _sounds(self, verb: Element) -> list[Sound]:
        if verb.tag == "Pause":
            length = number_attr(verb, "length", 1.0, self._warn)
            return [Sound(kind.PAUSE, "", None, None, length)]
        if verb.tag == "Say":
            rendered = render_say(verb)
            for note in rendered.notes:
                self._note(note)
            if not rendered.text:
                self._warn("<Say> has no text; nothing is said")
                return []
            sound = Sound(kind.SAY, rendered.text, verb.get("voice"), verb.get("language"),
                           rendered.seconds)
        else:
            text = text_of(verb)
            digits = verb.get("digits")
            if text:
                sound = Sound(kind.PLAY, f"[play {urljoin(self._document_url, text)}]", None,
                               None, SECONDS_PER_PLAY)
            elif digits and valid_digits(digits):
                sound = Sound(kind.PLAY, f"[play digits {digits}]", None, None,
                               digits_seconds(digits))
            elif digits:
                self._warn(f"<Play digits={digits!r}> has keys other than 0-9 * # w; "
                           "nothing is played")
                return []
            else:
                self._warn("<Play> has neither a URL nor digits; nothing is played")
                return []
        return [sound] * self._loops(verb)

    def _loops(self, verb: Element) -> int:
        loops = count_attr(verb, "loop", 1, self._warn)
        if loops == 0:
            self._note(f'<{verb.tag} loop="0"> repeats until the call moves on; '
                       f"simulated as {MANY_LOOPS} repetitions")
            return MANY_LOOPS
        return 1 if loops is None else loops

    def _play(self, sounds: list[Sound],
              keep: Callable[[list[Sound]], None] | None = None) -> None:
        """Play sounds in order. On hold, time may stop before they end (the caller's deadline,
        another call's action): what is left goes to `keep` (default: the hold's pending)."""
        for index, sound in enumerate(sounds):
            if sound.kind == kind.PAUSE:
                if not sound.resumed:
                    self._event(kind.PAUSE, f"{sound.seconds:g} s")
            elif not sound.resumed:
                utterance = Utterance(sound.text, sound.voice, sound.language, self.clock.now)
                self._said.append(utterance)
                self._event(sound.kind, f"{sound.text}  ({utterance.voice_label()})")
            try:
                self._pass(sound.seconds)
            except Cut as cut:
                rest = [replace(sound, seconds=round(cut.left, 3), resumed=True),
                        *sounds[index + 1:]]
                if keep is not None:
                    keep(rest)
                elif self._hold is not None:
                    self._hold.pending = rest
                raise

    def _pass(self, seconds: float) -> None:
        """Let a sound's time pass; on hold, only up to the caller's deadline, and another
        call may cut it short (Cut)."""
        if seconds <= 0:
            return
        if self._hold is None:
            if not self._playing_verbs:
                self.clock.advance(seconds)
                return
            end = self.clock.now + seconds
            while end - self.clock.now > 0.0005:  # the clock keeps milliseconds; a REST
                # request may stop the document (Redirected)
                if self.world.sleep(end - self.clock.now, interruptible=True) and any(
                        str(event[0]).startswith("rest-") for event in self._events):
                    raise Redirected(self.clock.now)
            return
        start = self.clock.now
        end = min(start + seconds, self._deadline)
        woke = False
        if end > start:
            self._requests_since_input = 0
            woke = self.world.sleep(end - start, interruptible=True)
        elapsed = self.clock.now - start
        if woke or elapsed < seconds - 0.0005:  # the clock keeps milliseconds
            raise Cut(seconds - elapsed, woke)

    def _play_prompt_for(self, seconds: float) -> list[str]:
        """Play the waiting <Gather>'s prompt for `seconds` only (a sound cut short was heard
        in part); returns the texts not heard, whole or in part."""
        prompt, self._prompt = self._prompt, []
        left = seconds
        for index, sound in enumerate(prompt):
            if left < sound.seconds:
                if left > 0:
                    self._play([replace(sound, seconds=round(left, 3))])
                return [rest.text for rest in prompt[index:]
                        if rest.kind != kind.PAUSE and not rest.resumed]
            self._play([sound])
            left -= sound.seconds
        return []

    def _play_prompt(self) -> None:
        prompt, self._prompt = self._prompt, []
        self._play(prompt)
