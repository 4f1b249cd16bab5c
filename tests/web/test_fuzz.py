"""Property-based fuzzing of every webhook: whatever arrives, the answer is safe TwiML or a 4xx.

Properties checked on every response:
- never a 5xx, never a Python traceback in the body;
- every 200 (and every XML error page) parses with defusedxml, its root is <Response> and it
  holds only the Twilio verbs this app speaks (Say, Gather, Redirect, Hangup, Dial, Pause, Enqueue);
- markup a caller sends (Digits, From, CallSid ...) never comes back as markup;
- a real call hit by junk in the middle still takes its next valid key, or it has ended
  politely (goodbye, then <Hangup/>).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from conftest import say
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ivr.web import MAX_BODY_BYTES
from ivr.web import form as webform
from ivr.web.voice import STRICT_FIELDS

VERBS = {"Say", "Gather", "Redirect", "Hangup", "Dial", "Pause", "Enqueue"}
IN_GATHER = {"Say", "Pause"}
HANGUP_ONLY = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'
GOODBYES = (say("goodbye"), say("goodbye", "en-US"))

FUZZ_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    # the app and its database are built once per test, not per example: every example uses
    # its own CallSid, so examples do not see each other's calls
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Markup and escapes a caller might smuggle in; none of them is part of any TwiML we send.
INJECTIONS = [
    "<b>bold</b>", "<Say>pwned</Say>", "]]><Hangup/>", "<![CDATA[x]]>", "&", "&amp;", "&#0;",
    "&lt;b&gt;", "<!DOCTYPE r [<!ENTITY e 'x'>]>&e;", "<?xml version='1.0'?>", "\"'><script>",
    "<Redirect>http://evil.example/</Redirect>", "1<b>2", "</Response><Dial>+1900</Dial>",
]
CONTROL = ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x1b[31m", "\x7f", "\ufeff", "\u202e",
           "\ud7ff", "\ufffe", "\r\n", "\t"]
NON_ASCII = ["身份证", "１２３４", "١٢٣", "😀", "Ⅻ", "ß", "\u0301",
             "４５０１０２１９７５０３１５００１３"]


CURRENT = "<the call's current step>"
JUNK = "<junk>"


def weighted(choices: list[Any], junk: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One of `choices` (repeat one to weight it), or a junk value where JUNK is drawn.

    (`st.one_of(st.sampled_from(...), st.text())` would mostly give text: Hypothesis avoids
    repeating an example, so the few plain choices are soon used up.)
    """
    return st.tuples(st.sampled_from(choices), junk).map(
        lambda pair: pair[1] if pair[0] == JUNK else pair[0])


def _huge(chunk: str, n: int) -> str:
    return (chunk * n)[:10_000]


texts = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="0123456789*#", max_size=25),
    st.sampled_from(INJECTIONS),
    st.sampled_from(CONTROL),
    st.sampled_from(NON_ASCII),
    st.builds(lambda a, b: a + b, st.sampled_from(INJECTIONS + CONTROL), st.text(max_size=8)),
    st.builds(_huge, st.sampled_from(["1", "<b>", "&", "字", "\x00", "]]>", "%"]),
              st.integers(1, 10_000)),
)
field_names = weighted(["CallSid", "Digits", "Digits", "From", "To", "CallStatus",
                        "DialCallStatus", "FinishedOnKey", "AccountSid", "Caller", JUNK, JUNK],
                       texts.filter(bool))
forms = st.dictionaries(field_names, texts, max_size=6)
query_values = weighted(["0", "1", "2", "-1", "abc", "1.5", " 1", "1e3", "0_1", "9" * 5000,
                         "٣", "", JUNK, JUNK, JUNK], texts)
queries = st.dictionaries(
    weighted(["s", "s", "e", "e", "Digits", "CallSid", JUNK], texts.filter(bool)),
    weighted(["silence", "dialed", "whatever", "", JUNK, JUNK], query_values),
    max_size=4,
)
ENDPOINTS = ["/voice", "/voice/step", "/status"]
paths = weighted(
    ENDPOINTS * 4 + ["/", "/voice/", "/voice/step/", "/voice/step/1", "/admin", "/static/x.js",
                     "/voice/../status", "//voice", "/VOICE", JUNK, JUNK],
    st.builds(lambda t: "/" + quote(t, safe="/"), st.text(max_size=20)),
)
methods = st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH"])
call_sids = st.tuples(st.sampled_from([None, "", "new", "new", JUNK]), st.uuids(), texts).map(
    lambda t: "CA" + t[1].hex if t[0] == "new" else t[2] if t[0] == JUNK else t[0])


def _values(query: dict[str, str], form: dict[str, str]) -> list[str]:
    return [*query.keys(), *query.values(), *form.keys(), *form.values()]


def _twiml(body: str) -> Element:
    """Parse safely; the document must be a <Response> of Twilio verbs only."""
    root: Element = SafeET.fromstring(body)
    assert root.tag == "Response", body[:500]
    for child in root:
        assert child.tag in VERBS, f"<{child.tag}> in {body[:500]}"
        for inner in child.iter():
            if inner is child:
                continue
            allowed = IN_GATHER if child.tag == "Gather" else set()
            assert inner.tag in allowed, f"<{inner.tag}> inside <{child.tag}> in {body[:500]}"
    return root


def check_safe(response: Any, method: str, sent: list[str]) -> Element | None:
    """The properties every response holds; returns the parsed TwiML when there is some."""
    status = response.status_code
    body = response.get_data(as_text=True)
    assert status < 500, (status, body[:500])
    assert "Traceback" not in body and 'File "' not in body, body[:500]
    root = None
    is_xml = "xml" in (response.mimetype or "")
    if (status == 200 and method != "HEAD") or (is_xml and body):
        assert is_xml, (status, response.mimetype, body[:200])
        root = _twiml(body)
    for value in sent:  # markup the caller sent never comes back raw
        if any(marker in value for marker in ("<b>", "<Say>", "]]>", "<Redirect>", "<!",
                                              "<?xml", "<script>", "<Dial>", "&lt;", "&#0;")):
            assert value not in body, (value[:80], body[:500])
    return root


@FUZZ_SETTINGS
@given(method=methods, path=paths, query=queries, form=forms, call_sid=call_sids)
def test_any_webhook_request_gets_a_safe_answer(client: Any, method: str, path: str,
                                                query: dict[str, str], form: dict[str, str],
                                                call_sid: str | None) -> None:
    if call_sid is not None:
        form = {**form, "CallSid": call_sid}
    response = client.open(path, method=method, query_string=query, data=form)
    event(f"HTTP {response.status_code}")
    check_safe(response, method, _values(query, form))


@FUZZ_SETTINGS
@given(digits=texts, from_=texts, query=queries, extra=forms)
def test_new_call_with_junk_fields_is_answered_or_apologised(client: Any, digits: str,
                                                             from_: str, query: dict[str, str],
                                                             extra: dict[str, str]) -> None:
    """A first webhook with a valid CallSid but junk everywhere else: refused (400) when the
    request is not of a Twilio request's shape or one of Twilio's fields is not of its form,
    else it starts a call."""
    form = {**extra, "CallSid": "CA" + uuid.uuid4().hex, "Digits": digits, "From": from_}
    response = client.post("/voice", query_string=query, data=form)
    root = check_safe(response, "POST", _values(query, form))
    if _too_big(form):
        event("refused: too big")
        assert response.status_code == 413
        return
    if _not_twilios(query, form):
        event("refused: not of a Twilio request's shape")
        assert response.status_code == 400
        return
    if _breaks_a_rule(query, form):
        event("refused: a field not of its form")
        assert response.status_code == 400
        return
    assert response.status_code == 200 and root is not None
    said = "".join(root.itertext())
    assert say("welcome", line="医保服务热线") in said or any(g in said for g in GOODBYES), said


# ---- a real call hit by junk in the middle --------------------------------------------------

fuzz_hits = st.fixed_dictionaries(
    {
        "path": st.sampled_from(["/voice/step"] * 6 + ["/voice", "/status", "/nowhere"]),
        # mostly the step the call is at: only such a request can move the call on
        "s": weighted([CURRENT] * 4 + ["1", "0", None, JUNK, JUNK], query_values),
        "e": weighted([None] * 5 + ["silence", "dialed", "queued", JUNK], texts),
        "digits": weighted([*"0123456789*#", *"0123459", None, JUNK, JUNK, JUNK], texts),
        "status": weighted([None, None, None, "completed", "in-progress", "busy", JUNK], texts),
        "extra": forms,
    },
)

#: What a caller presses to get on from each waiting state, and where it leads.
NEXT_KEY = {
    "welcome": ("1", {"main"}),
    "main": ("4", {"policy"}),
    "id_entry": ("450102197503150013", {"id_confirm"}),
    "card_entry": ("548426015", {"password"}),
    "password": ("000000", {"password", "agent_queue", "goodbye"}),  # asked again, or no tries
}
MENUS_TO_MAIN = {"verify_method", "id_confirm", "balance", "pool", "transactions", "policy",
                 "policy_pool", "policy_withdrawal", "policy_fraud"}


def _is_current(s: str | None, session: Any) -> bool:
    """Would the app take this `s` for the session's current step (it parses with int())?"""
    try:
        return int(s if s is not None else "-1") == session.step
    except ValueError:
        return False


def _too_big(form: dict[str, str]) -> bool:
    """Would the form be over the app's body limit (refused with 413 before it is read)?"""
    return len(urlencode(form).encode()) > MAX_BODY_BYTES


def _not_twilios(query: dict[str, str], form: dict[str, str]) -> bool:
    """Would the app refuse the request's shape (too many fields, a name not of Twilio's form,
    an oversized value: ivr/web/form.py), encoded as the test client encodes it?"""
    return any(webform.problem(urlencode(values, safe="!$'()*,/:;?@").encode())
               for values in (query, form))


def _breaks_a_rule(*sources: dict[str, str]) -> bool:
    """Would the app refuse these values (a Twilio field, in the query or the form, not of
    Twilio's form)?"""
    return any(name in values and not rule.fullmatch(values[name])
               for values in sources for name, rule in STRICT_FIELDS.items())


def _int(s: str | None) -> int:
    """`s` as the app reads it (anything but an integer is -1)."""
    try:
        return int(s if s is not None else "-1")
    except ValueError:
        return -1


def _s_of(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["s"][0])


@FUZZ_SETTINGS
@given(hits=st.lists(fuzz_hits, min_size=1, max_size=5))
def test_real_call_survives_junk_in_the_middle(app: Any, client: Any,
                                               hits: list[dict[str, Any]]) -> None:
    store = app.extensions["ivr12333"].store
    sid = "CA" + uuid.uuid4().hex
    caller = {"CallSid": sid, "From": "+86139" + str(int(sid[-6:], 16)).zfill(8), "To": "+8612333"}
    assert client.post("/voice", data=caller).status_code == 200
    response = client.post("/voice/step?s=1", data={**caller, "Digits": "1"})
    last_answer = response.get_data(as_text=True)  # what the caller holds now
    assert say("main_menu") in last_answer

    closed_by_twilio = False
    for hit in hits:
        query = {k: hit[k] for k in ("s", "e") if hit[k] is not None}
        if query.get("s") == CURRENT:
            now = store.load(sid)
            query["s"] = str(now.step if now else 0)
        form = {**hit["extra"], **caller}
        if hit["digits"] is not None:
            form["Digits"] = hit["digits"]
        if hit["status"] is not None:
            form["CallStatus"] = hit["status"]
        before = store.load(sid)
        response = client.post(hit["path"], query_string=query, data=form)
        check_safe(response, "POST", _values(query, form))
        gather_without_digits = (hit["path"] == "/voice/step" and "Digits" not in form
                                 and query.get("e") not in ("silence", "dialed", "queued"))
        if hit["path"] != "/nowhere" and (_too_big(form) or _not_twilios(query, form)
                                          or _breaks_a_rule(query, form)
                                          or gather_without_digits):
            assert response.status_code in (400, 413)  # refused before anything happened
            assert store.load(sid) == before
            continue
        retry = hit["path"] == "/voice" or (
            hit["path"] == "/voice/step" and not _is_current(query.get("s"), before))
        if retry or hit["path"] == "/nowhere":
            # a repeated /voice or a stale step is a retry: it changes nothing
            assert store.load(sid) == before, (query, hit["path"])
        body = response.get_data(as_text=True)
        if retry:  # ... and gets the answer to the request it repeats (ended: just <Hangup/>)
            replayed = 1 if hit["path"] == "/voice" else _int(query.get("s")) + 1
            stored = store.answer(sid, replayed) if 0 < replayed <= before.step else None
            if before.ended:
                assert body == HANGUP_ONLY
            elif stored is not None:
                assert body == stored
            else:  # a step the call never had: an apology
                assert "系统繁忙" in "".join(_twiml(body).itertext()), body
        after = store.load(sid)
        if after is not None and after.step != before.step:
            last_answer = body
        if hit["path"] == "/status" and form.get("CallStatus") in (
                "completed", "busy", "failed", "no-answer", "canceled"):
            closed_by_twilio = True

    session = store.load(sid)
    assert session is not None
    event(f"after the junk: {'ended' if session.ended else session.state}")
    if session.ended:
        after = client.post(f"/voice/step?s={session.step}", data={**caller, "Digits": "1"})
        root = check_safe(after, "POST", [])
        assert root is not None and [c.tag for c in root][-1:] == ["Hangup"]
        if not closed_by_twilio:  # the app ended it: politely, goodbye then hang up
            last = _twiml(last_answer)
            assert [c.tag for c in last][-1] == "Hangup"
            assert any(g in "".join(last.itertext()) for g in GOODBYES), last_answer
        return

    # the answer the caller holds points at the session's current step
    assert store.answer(sid, session.step) == last_answer
    last = _twiml(last_answer)
    gather, enqueue = last.find("Gather"), last.find("Enqueue")
    if gather is not None:
        action = str(gather.get("action"))
        assert _s_of(action) == session.step
        key, expected = NEXT_KEY.get(session.state, ("9", {"main"}))
        assert session.state in NEXT_KEY or session.state in MENUS_TO_MAIN, session.state
        response = client.post(action, data={**caller, "Digits": key})
    else:
        assert enqueue is not None and session.state == "agent_queue", last_answer
        action = str(enqueue.get("action"))
        assert _s_of(action) == session.step
        expected = {"main"}
        response = client.post(action, data={**caller, "QueueResult": "queue-full"})
    root = check_safe(response, "POST", [])
    assert response.status_code == 200 and root is not None
    after = store.load(sid)
    assert after is not None and after.step == session.step + 1
    assert after.state in expected, (session.state, after.state)
    assert say("system_busy") not in "".join(root.itertext())
