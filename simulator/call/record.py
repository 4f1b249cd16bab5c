"""<Record>: its attributes, the caller speaking into it, its action and its callbacks."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from simulator import transcript as kind
from simulator.call.say import Sounds
from simulator.call.state import RECORD_MAX_LENGTH, PendingRecord, Sound, new_sid
from simulator.clock import SECONDS_PER_BEEP, SECONDS_PER_KEY
from simulator.errors import CallEnded, NotWaiting
from simulator.gather import KEYS
from simulator.twiml import bool_attr, method_attr, number_attr

TRANSCRIBE_MAX_SECONDS = 120  # Twilio transcribes recordings of up to 2 minutes
RECORDINGS = "https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{sid}"
TRANSCRIPTIONS = "https://api.twilio.com/2010-04-01/Accounts/{account}/Transcriptions/{sid}"


class Recording(Sounds):
    """A <Record> waits for the caller to speak."""

    def record(self, seconds: float, *, text: str | None = None, key: str | None = None) -> None:
        """Speak into the waiting <Record> for `seconds`, then press `key` (one of its
        finishOnKey keys), or hang up (key "hangup"), or fall silent until its timeout.
        `text` is what a transcription reads."""
        record = self._recording
        if self.ended:
            raise CallEnded(f"cannot record: the call has ended ({self.outcome})")
        if record is None:
            raise NotWaiting(f"cannot record: no <Record> is waiting ({self.state})")
        if seconds <= 0:
            raise ValueError("record() needs a positive number of seconds; use silence()")
        self._begin_action()
        spoken = min(seconds, record.max_length)
        self._event(kind.RECORD, f"the caller speaks for {spoken:g} s" +
                    (f": {text!r}" if text else ""))
        self.clock.advance(spoken)
        if seconds >= record.max_length:
            self._note(f"maxLength {record.max_length:g} s reached: the recording stops")
            self._finish_record(record, spoken, None, text)
        elif key == "hangup":
            self._event(kind.HANGUP, "by the caller, during the recording")
            self._finish_record(record, spoken, "hangup", text)
        elif key and key in record.finish_on_key:
            self._event(kind.KEYS, key)
            self.clock.advance(SECONDS_PER_KEY)
            self._finish_record(record, spoken, key, text)
        else:
            if key:
                self._note(f"key {key!r} is not a finishOnKey of this <Record>: it is recorded")
            self._event(kind.SILENCE, f"then silence for {record.timeout:g} s ends the recording")
            self.clock.advance(record.timeout)
            trailing = 0.0 if record.trim else record.timeout
            self._finish_record(record, spoken + trailing, None, text)

    def _record(self, verb: Element) -> None:
        action = verb.get("action")
        finish = verb.get("finishOnKey", "1234567890*#")
        if any(key not in KEYS for key in finish):
            self._warn(f"<Record> finishOnKey={finish!r} has keys other than 0-9 * #; "
                       "using any key")
            finish = "1234567890*#"
        max_length = number_attr(verb, "maxLength", RECORD_MAX_LENGTH, self._warn)
        trim = verb.get("trim", "trim-silence")
        if trim not in ("trim-silence", "do-not-trim"):
            self._warn(f"<Record> trim={trim!r} is not trim-silence or do-not-trim; trimming")
            trim = "trim-silence"
        callback = verb.get("recordingStatusCallback")
        transcribe_callback = verb.get("transcribeCallback")
        events = tuple((verb.get("recordingStatusCallbackEvent") or "completed").split())
        record = PendingRecord(
            action=urljoin(self._document_url, action) if action else self._document_url,
            method=method_attr(verb, self._warn),
            timeout=number_attr(verb, "timeout", 5.0, self._warn),
            finish_on_key=finish,
            max_length=max_length or RECORD_MAX_LENGTH,  # 0: Twilio's maximum
            trim=trim == "trim-silence",
            status_callback=urljoin(self._document_url, callback) if callback else None,
            status_callback_method=method_attr(verb, self._warn,
                                               "recordingStatusCallbackMethod"),
            status_callback_events=events,
            transcribe=bool_attr(verb, "transcribe", False, self._warn) or bool(
                transcribe_callback),
            transcribe_callback=(urljoin(self._document_url, transcribe_callback)
                                 if transcribe_callback else None),
        )
        if bool_attr(verb, "playBeep", True, self._warn):
            self._play([Sound(kind.PLAY, "[beep]", None, None, SECONDS_PER_BEEP)])
        self._event(kind.RECORD, f"a <Record> waits: {record.describe()}")
        self._recording = record

    def _finish_record(self, record: PendingRecord, seconds: float, digits: str | None,
                       text: str | None) -> None:
        self._recording = None
        duration = round(seconds)
        if duration <= 0:
            self._note("nothing was recorded: the action is not requested; the next verb runs")
            self._recording_callbacks(record, None, 0, None)
            self._run()
            return
        recording = new_sid("RE")
        url = RECORDINGS.format(account=self.account_sid, sid=recording)
        params = {"RecordingUrl": url, "RecordingDuration": str(duration),
                  "RecordingSid": recording}
        if digits is not None:
            params["Digits"] = digits
        hung_up = digits == "hangup"
        if hung_up:
            self.status = "completed"
            self._post("record action (the call has ended; its answer is not played)",
                       record.action, record.method, params)
            self._recording_callbacks(record, recording, duration, text)
            self._end("caller", "completed")
            return
        fetched = self._fetch(record.action, record.method, params)
        self._recording_callbacks(record, recording, duration, text)
        if fetched:
            self._run()

    def _recording_callbacks(self, record: PendingRecord, recording: str | None,
                             duration: int, text: str | None) -> None:
        """recordingStatusCallback and transcribeCallback, as the recording is complete."""
        url = RECORDINGS.format(account=self.account_sid, sid=recording) if recording else ""
        status = "completed" if recording else "absent"
        if record.status_callback and status in record.status_callback_events:
            started = self.clock.moment - timedelta(seconds=duration)
            self._post("recording status callback", record.status_callback,
                       record.status_callback_method,
                       {"RecordingSid": recording or "", "RecordingUrl": url,
                        "RecordingStatus": status, "RecordingDuration": str(duration),
                        "RecordingChannels": "1", "RecordingSource": "RecordVerb",
                        "RecordingStartTime": format_datetime(started)}, standard=False)
        if record.transcribe and recording:
            failed = not text or duration > TRANSCRIBE_MAX_SECONDS
            if not record.transcribe_callback:
                self._note("transcribe without transcribeCallback: nothing is posted")
                return
            transcription = new_sid("TR")
            self._post("transcribe callback", record.transcribe_callback, "POST",
                       {"TranscriptionSid": transcription,
                        "TranscriptionText": "" if failed else str(text),
                        "TranscriptionStatus": "failed" if failed else "completed",
                        "TranscriptionUrl": TRANSCRIPTIONS.format(account=self.account_sid,
                                                                  sid=transcription),
                        "RecordingSid": recording, "RecordingUrl": url})
