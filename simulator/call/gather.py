"""<Gather>: its attributes, its nested prompt, and the caller's keys and speech at it."""

from __future__ import annotations

from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from simulator import transcript as kind
from simulator.call.say import SOUND_VERBS, Sounds
from simulator.call.state import Sound
from simulator.clock import SECONDS_PER_KEY, speech_seconds
from simulator.errors import ApplicationError, NotWaiting
from simulator.gather import KEYS, Collected, PendingGather
from simulator.twiml import bool_attr, count_attr, method_attr, number_attr


class Gathering(Sounds):
    """A <Gather> waits for the caller: press, speak (silence is the call's, for <Record> too)."""

    def press(self, keys: str, *, barge_in: bool = False) -> Collected:
        """Press keys at the waiting Gather after its prompt played (or barge in at its start)."""
        gather = self._require_waiting(f"press {keys!r}")
        if not keys:
            raise ValueError("press() needs at least one key; use silence() to stay silent")
        if not gather.keys:
            raise NotWaiting(f"cannot press {keys!r}: the <Gather> listens for speech only "
                             f"(input={' '.join(gather.input)}); use speak")
        collected = gather.collect(keys)
        self._deadline = self.clock.now
        if (barge_in or self._hold is not None) and self._prompt:
            unplayed = [sound.text for sound in self._prompt if sound.kind != kind.PAUSE]
            self._event(kind.BARGE_IN, "keys stop the prompt; not heard: " + " / ".join(unplayed))
            self._prompt = []
        else:
            self._play_prompt()
        self._begin_action()
        used = keys[: len(keys) - len(collected.ignored)]
        self._event(kind.KEYS, used)
        self.clock.advance(SECONDS_PER_KEY * len(used))
        if collected.ignored:
            self._event(
                kind.IGNORED, f"{collected.ignored} (pressed after the <Gather> completed; lost)"
            )
        if collected.timed_out:
            self.clock.advance(gather.timeout)
            self._event(
                kind.TIMEOUT,
                f"no more keys for {gather.timeout:g} s: the <Gather> ends with "
                f"Digits={collected.digits!r}",
            )
        self._finish_gather(gather, collected)
        return collected

    def speak(self, text: str, *, confidence: float = 0.9, language: str | None = None) -> None:
        """Say `text` at the waiting speech <Gather>: its action gets SpeechResult, Confidence."""
        gather = self._require_waiting(f"say {text!r}")
        if not gather.speech:
            raise NotWaiting(f"cannot say {text!r}: the <Gather> listens for keys only "
                             f"(input={' '.join(gather.input)})")
        if not text.strip():
            raise ValueError("speak() needs words; use silence() to stay silent")
        self._deadline = self.clock.now
        if self._hold is not None:
            self._prompt = []
        self._play_prompt()
        self._begin_action()
        spoken = language or gather.language
        if spoken != gather.language:
            self._note(f"the caller speaks {spoken} to a <Gather> that recognises "
                       f"{gather.language}: recognised as said")
        self._event(kind.SPEECH, f"{text!r} (confidence {confidence:g}, {spoken})")
        words = text.split()
        each = speech_seconds(text) / max(len(words), 1)
        for number, word in enumerate(words, start=1):
            self.clock.advance(each)
            if gather.partial_result_callback:
                self._post("partial result", gather.partial_result_callback,
                           gather.partial_result_method,
                           {"SequenceNumber": str(number),
                            "StableSpeechResult": " ".join(words[: number - 1]),
                            "UnstableSpeechResult": word,
                            "LanguageCode": gather.language})
        self.clock.advance(gather.end_of_speech())
        params = {"SpeechResult": text, "Confidence": f"{confidence:g}",
                  "Language": gather.language}
        self._waiting = None
        if self._fetch(gather.action, gather.method, params):
            self._run()

    def _gather(self, verb: Element) -> None:
        modes = tuple(dict.fromkeys((verb.get("input") or "dtmf").split()))
        unknown = [mode for mode in modes if mode not in ("dtmf", "speech")]
        if unknown or not modes:
            self._warn(f"<Gather> input={verb.get('input')!r} is not dtmf, speech or both; "
                       "using dtmf")
            modes = ("dtmf",)
        finish_on_key = verb.get("finishOnKey", "#")
        if finish_on_key and (len(finish_on_key) != 1 or finish_on_key not in KEYS):
            self._warn(f"<Gather> finishOnKey={finish_on_key!r} is not one key; using '#'")
            finish_on_key = "#"
        num_digits = count_attr(verb, "numDigits", None, self._warn)
        if num_digits == 0:
            self._warn('<Gather> numDigits="0" is invalid; no digit limit')
            num_digits = None
        speech_timeout = verb.get("speechTimeout")
        if speech_timeout is not None and speech_timeout != "auto":
            try:
                if float(speech_timeout) < 0:
                    raise ValueError
            except ValueError:
                self._warn(f"<Gather> speechTimeout={speech_timeout!r} is not seconds or auto; "
                           "using the timeout")
                speech_timeout = None
        action = verb.get("action")
        partial = verb.get("partialResultCallback")
        gather = PendingGather(
            action=urljoin(self._document_url, action) if action else self._document_url,
            method=method_attr(verb, self._warn),
            timeout=number_attr(verb, "timeout", 5.0, self._warn),
            finish_on_key=finish_on_key,
            num_digits=num_digits,
            action_on_empty_result=bool_attr(verb, "actionOnEmptyResult", False, self._warn),
            input=modes,
            speech_timeout=speech_timeout,
            language=verb.get("language", "en-US"),
            hints=verb.get("hints", ""),
            partial_result_callback=urljoin(self._document_url, partial) if partial else None,
            partial_result_method=method_attr(verb, self._warn, "partialResultCallbackMethod"),
        )
        if gather.hints:
            self._note(f"<Gather hints={gather.hints!r}>: speech is recognised as the caller "
                       "says it; hints change nothing")
        prompt: list[Sound] = []
        for child in verb:
            if child.tag not in SOUND_VERBS:
                raise ApplicationError(f"<{child.tag}> cannot be nested in <Gather>")
            self._check_attributes(child)
            prompt.extend(self._sounds(child))
        self._event(kind.GATHER, gather.describe())
        self._prompt = prompt
        self._waiting = gather

    def _finish_gather(self, gather: PendingGather, collected: Collected) -> None:
        self._waiting = None
        if self._hold is not None:
            self._hold.listen_left = None
        if collected.empty and not gather.action_on_empty_result:
            self._note("no digits: the action is not requested; the next verb runs")
            self._run()
            return
        params = {"Digits": collected.digits, "FinishedOnKey": collected.finished_on_key}
        if self._fetch(gather.action, gather.method, params):
            self._run()
