"""Every path of docs/call-flow.md, driven through the real WSGI app by a simulated caller.

What the caller should hear is the catalogue's prompt by id (conftest.say), so a change of
wording in prompts/*.yaml fails tests/engine/test_prompts.py, not here. The data inside a prompt is
literal here on purpose (amounts, dates and counts in words, masked names, read-back digits):
a change in the way money, dates and counts are spoken, or in which data is read out, must
fail here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from conftest import catalogue, prompt_pattern, say

from ivr.settings import Settings
from ivr.tools.cli import main as cli
from ivr.web import create_app
from simulator import Simulator, WsgiTransport

# --- what the caller hears, by prompt id (zh-CN) -----------------------------------------------

WELCOME = say("welcome", line="医保服务热线")
WELCOME_ENGLISH = say("welcome_english", line="Healthcare Security hotline")
MAIN = say("main_menu")
VERIFY_METHOD = say("verify_method")
ID_ENTRY = say("id_entry")
ID_MALFORMED = say("id_malformed")
CARD_ENTRY = say("card_entry")
CARD_MALFORMED = say("card_malformed")
CARD_AMBIGUOUS = say("card_ambiguous")
PASSWORD = say("password_entry")
PASSWORD_WRONG = say("password_wrong", left="两")
#: after the second wrong try of a call: one left, and what to do if forgotten
LAST_TRY = say("password_last_try", lockout="三")
PASSWORD_MALFORMED = say("password_malformed")
VERIFICATION_FAILED = say("verification_failed")
TOO_MANY_ATTEMPTS = say("too_many_attempts")
RESULT_MENU = say("result_menu")
POLICY_MENU = say("policy_menu")
AGENT_CONNECTING = say("agent_connecting")
QUEUE_NEXT = say("queue_next")
QUEUE_LEAVE = say("queue_leave_key")
#: what a caller hears on entering the agent queue, first in it
QUEUED = [AGENT_CONNECTING, QUEUE_NEXT, QUEUE_LEAVE, say("queue_stay")]
NO_INPUT = say("no_input")
INVALID = say("invalid_input")
TOO_MANY_INVALID = say("too_many_invalid")
GOODBYE = say("goodbye")


def agent_hours(locale: str = "zh-CN") -> str:
    """The demo region's agent hours as said: Monday to Friday, 9:00-12:00 and 13:00-17:00."""
    days = {"zh-CN": "工作日", "en-US": "weekdays"}[locale]
    separator = {"zh-CN": ",", "en-US": " and "}[locale]
    ends = {"zh-CN": (("上午9点", "12点"), ("下午1点", "5点")),
            "en-US": (("9 a.m.", "noon"), ("1 p.m.", "5 p.m."))}[locale]
    shifts = separator.join(say("agent_shift", locale, start=start, end=end)
                            for start, end in ends)
    return say("agent_days", locale, days=days, times=shifts)


AGENT_CLOSED = say("agent_closed_holidays", hours=agent_hours())  # the demo lists holidays


def readback(last4: str) -> str:
    return say("id_readback", last4=last4)


def balance_employee(balance: str, credit: str) -> str:
    return say("balance_employee", as_of="2026年11月21日", balance=balance, credit=credit,
               month="2026年11月")


JIANGUO_BALANCE = balance_employee("一千二百三十四元五角六分", "一百五十元")
BALANCE_RESIDENT = say("balance_resident")
BALANCE_SUSPENDED = say("balance_suspended", as_of="2026年11月21日", balance="八十八元")
POOL_NONE_EMPLOYEE = say("pool_none_employee")
POOL_NONE_RESIDENT = say("pool_none_resident")
TX_NONE = say("tx_none")

# --- what the caller hears, by prompt id (en-US) -----------------------------------------------

EN_MAIN = say("main_menu", "en-US")
EN_RESULT_MENU = say("result_menu", "en-US")
EN_GOODBYE = say("goodbye", "en-US")
CJK = re.compile(r"[\u4e00-\u9fff]")

ZH_VOICE = ("Polly.Zhiyu", "cmn-CN")
EN_VOICE = ("Polly.Joanna", "en-US")


# --- the demo people ----------------------------------------------------------------------------

class Person(NamedTuple):
    id_number: str  # as keyed in: * for X
    password: str


JIANGUO = Person("450102197503150013", "135790")  # employee, funder of four
CHENLI = Person("450102197806200022", "246802")  # employee, funder and beneficiary
CHENLI_CARD = "548426015"
LIMING = Person("450103200201010032", "111222")  # resident, beneficiary
XIAOYU = Person("450105201506120045", "333444")  # resident, beneficiary of two funders
ZHOUQIANG = Person("450107199009090132", "444555")  # suspended, card A12345678
WUFANG = Person("450107198811110263", "555666")  # employee, no bindings, 0.00, card B12345678
XIUYING = Person("11010519491231002*", "666777")  # ID ends in X, balance 10.50
XIAOLONG = Person("450108199604180219", "777888")  # resident, nobody funds him
UNKNOWN_CARD = "999999999"

# conftest's clock starts staffed (Monday 10:00 Beijing); this is its Sunday afternoon
UNSTAFFED = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)


# --- helpers ------------------------------------------------------------------------------------

def texts(caller: Any) -> list[str]:
    """What was said since the caller's previous action, one entry per <Say>."""
    return [u.text for u in caller.call.said]


def mandarin_prompt(text: str) -> bool:
    """Is `text` one of the catalogue's zh-CN prompts with Chinese wording, with any values?"""
    patterns = (prompt_pattern(pid) for pid in catalogue().prompts["zh-CN"])
    return any(CJK.search(p.pattern) and p.fullmatch(text) for p in patterns)


def start(caller: Any, language: str = "1", **dial: Any) -> Any:
    """Dial and choose the language: the caller is at the main menu."""
    caller.dial(**dial)
    assert texts(caller) == [WELCOME, WELCOME_ENGLISH]
    caller.press(language)
    return caller


def verify_by_id(caller: Any, person: Person, menu: str = "1") -> Any:
    """From the main menu: choose `menu`, then ID number, confirm, password."""
    caller.press(menu).press("1").press(person.id_number + "#")
    caller.press("1").press(person.password + "#")
    return caller


def verify_by_card(caller: Any, card: str, password: str, menu: str = "1") -> Any:
    """From the main menu: choose `menu`, then card digits, password."""
    caller.press(menu).press("2").press(card + "#").press(password + "#")
    return caller


def retry_by_id(caller: Any, person: Person, password: str) -> None:
    """At the method menu (after * at the password): ID number, confirm, password."""
    caller.press("1").press(person.id_number + "#").press("1").press(password + "#")


def another_number(caller: Any) -> None:
    """At the password again after a wrong one: * (then #) to key another number."""
    caller.press("*#")
    assert texts(caller) == [VERIFY_METHOD]


def dials(caller: Any) -> list[str]:
    """Numbers the app dialled in the current call."""
    return [e.text.split(":")[0] for e in caller.call.transcript if e.kind == "dial"]


def assert_goodbye_then_hangup(caller: Any, goodbye: str = GOODBYE) -> None:
    """The app ended the call, and the last thing it said before <Hangup/> is the goodbye."""
    call = caller.call
    assert call.ended_by == "application", call.transcript_text()
    spoken = [e for e in call.transcript if e.kind in ("say", "play", "hangup")]
    assert spoken[-1].kind == "hangup"
    assert spoken[-1].text == "by the application (<Hangup>)"
    assert spoken[-2].kind == "say" and spoken[-2].text.startswith(goodbye + "  ("), spoken[-2]
    assert texts(caller)[-1] == goodbye


def assert_transferred(caller: Any) -> None:
    """The caller waits in the agent queue (nothing is dialled), and * leaves it for the main
    menu."""
    assert caller.call.on_hold == "queue", caller.call.transcript_text()
    assert dials(caller) == []
    caller.press("*")
    assert texts(caller) == [MAIN]
    assert caller.call.on_hold is None


# --- 1. welcome and language --------------------------------------------------------------------

def test_welcome_is_bilingual_with_one_voice_each(caller: Any) -> None:
    caller.dial()
    said = caller.call.said
    assert [u.text for u in said] == [WELCOME, WELCOME_ENGLISH]
    assert (said[0].voice, said[0].language) == ZH_VOICE
    assert (said[1].voice, said[1].language) == EN_VOICE


@pytest.mark.parametrize(
    ("action", "menu"),
    [("1", MAIN), ("2", EN_MAIN), (None, MAIN), ("7", MAIN), ("*", MAIN), ("0", MAIN)],
    ids=["1-mandarin", "2-english", "silence-mandarin", "7-mandarin", "star-mandarin",
         "0-mandarin"],
)
def test_language_choice(caller: Any, action: str | None, menu: str) -> None:
    caller.dial()
    if action is None:
        caller.silence()
    else:
        caller.press(action)
    # straight to the main menu: no no_input / invalid_input prompt at the welcome
    assert texts(caller) == [menu]
    voice = EN_VOICE if menu == EN_MAIN else ZH_VOICE
    assert all((u.voice, u.language) == voice for u in caller.call.said)
    assert dials(caller) == []


def test_english_holds_for_the_whole_call(caller: Any, clock: Any) -> None:
    clock.now = UNSTAFFED
    start(caller, "2")
    heard: list[Any] = []

    def step(keys: str) -> list[str]:
        caller.press(keys)
        heard.extend(caller.call.said)
        return texts(caller)

    en = "en-US"
    assert step("0") == [say("agent_closed_holidays", en, hours=agent_hours(en)), EN_MAIN]
    step("1")
    step("1")
    assert step(JIANGUO.id_number + "#") == [say("id_readback", en, last4="0 0 1 3")]
    step("1")
    assert step(JIANGUO.password + "#") == [
        say("balance_employee", en, as_of="November 21, 2026",
            balance="one thousand two hundred thirty-four yuan and fifty-six fen",
            credit="one hundred fifty yuan", month="November 2026"),
        EN_RESULT_MENU,
    ]
    step("9")
    assert step("3") == [
        say("tx_count", en, count="five"),
        say("tx_spend", en, date="November 3, 2026", kind="pharmacy purchase",
            amount="thirty-two yuan and fifty fen"),
        say("tx_credit", en, date="November 1, 2026", amount="one hundred fifty yuan"),
        say("tx_pool_payment", en, date="October 20, 2026", who="son, Mr Li",
            amount="one hundred twenty yuan"),
        say("tx_spend", en, date="October 11, 2026", kind="outpatient care",
            amount="eighty-five yuan and twenty fen"),
        say("tx_spend", en, date="September 2, 2026", kind="hospital stay",
            amount="one thousand five hundred yuan"),
        EN_RESULT_MENU,
    ]
    step("9")
    pool = step("2")
    assert pool[0] == say("pool_funder_count", en, count="four")
    assert say("pool_member", en, who="wife, Ms Chen",
               since="January 10, 2023") in pool
    assert say("pool_remaining", en, limit="seven", remaining="three") in pool
    assert step("5")[0] == say("invalid_input", en)
    caller.silence()
    heard.extend(caller.call.said)
    assert texts(caller)[0] == say("no_input", en)
    caller.silence(2)
    heard.extend(caller.call.said)
    assert_goodbye_then_hangup(caller, EN_GOODBYE)
    assert heard and all((u.voice, u.language) == EN_VOICE for u in heard)
    assert not [u.text for u in heard if "元" in u.text or mandarin_prompt(u.text)]


def test_english_counts_of_one_are_singular(caller: Any) -> None:
    verify_by_id(start(caller, "2"), CHENLI, "2")  # funds one, funded by one
    pool = texts(caller)
    assert say("pool_funder_count_one", "en-US") in pool
    assert say("pool_beneficiary_count_one", "en-US") in pool
    assert say("pool_funder_count", "en-US", count="one") not in pool
    assert say("pool_beneficiary_count", "en-US", count="one") not in pool


# --- 2. main menu -------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["*", "9"])
def test_main_menu_repeats(caller: Any, key: str) -> None:
    start(caller)
    caller.press(key)
    assert texts(caller) == [MAIN]


def test_main_menu_4_is_policy_without_verification(caller: Any) -> None:
    start(caller)
    caller.press("4")
    assert texts(caller) == [POLICY_MENU]


@pytest.mark.parametrize("key", ["1", "2", "3"])
def test_main_menu_1_2_3_need_verification(caller: Any, key: str) -> None:
    start(caller)
    caller.press(key)
    assert texts(caller) == [VERIFY_METHOD]


# --- 7. policy information ----------------------------------------------------------------------

#: the demo region (南宁市) lets its people bind all close relatives
CLOSE_RELATIVES = "配偶、父母、子女、兄弟姐妹、祖父母、外祖父母、孙子女、外孙子女"
POLICY_TOPICS = {
    # a list of short items, then one item at a time (issue 23 §10)
    "1": [say("policy_pool_menu")],
    "2": [say("policy_withdrawal"), say("policy_withdrawal_menu")],
    "3": [say("policy_fraud"), RESULT_MENU],
}
ITEM_MENU = say("policy_item_menu")
#: the family-pool items, in order, as 1 (the next) walks through them
POOL_ITEMS = [
    [say("policy_pool_who", relatives=CLOSE_RELATIVES), ITEM_MENU],
    [say("policy_pool_pays"), say("policy_commercial_yes"), ITEM_MENU],  # and insure them
    [say("policy_pool_use"), ITEM_MENU],
    [say("policy_pool_bind"), say("policy_item_last_menu")],
]


@pytest.mark.parametrize("key", sorted(POLICY_TOPICS))
def test_policy_topic_then_star_and_9(caller: Any, key: str) -> None:
    start(caller).press("4").press(key)
    topic = texts(caller)
    assert topic == POLICY_TOPICS[key]
    caller.press("*")
    assert texts(caller) == topic
    caller.press("9")
    assert texts(caller) == [MAIN]


def test_the_pool_topic_is_items_to_pick_or_skip(caller: Any) -> None:
    start(caller).press("4").press("1")
    for item in POOL_ITEMS[:3]:  # 1: the next item
        caller.press("1")
        assert texts(caller) == item
    caller.press("1")
    assert texts(caller) == POOL_ITEMS[3]
    caller.press("2")  # the list again, then any item at once
    assert texts(caller) == [say("policy_pool_menu")]
    caller.press("3")
    assert texts(caller) == POOL_ITEMS[2]


def test_withdrawal_cases_are_an_item_of_their_own(caller: Any) -> None:
    start(caller).press("4").press("2").press("1")
    assert texts(caller) == [say("policy_withdrawal_cases"), RESULT_MENU]


def test_policy_menu_9_back_to_main(caller: Any) -> None:
    start(caller).press("4").press("9")
    assert texts(caller) == [MAIN]


# --- conventions: *, 9 and 0 in every menu after the language choice ---------------------------

def _main(c: Any) -> None:
    start(c)


def _verify_method(c: Any) -> None:
    start(c).press("1")


def _id_confirm(c: Any) -> None:
    start(c).press("1").press("1").press(JIANGUO.id_number + "#")


def _balance(c: Any) -> None:
    verify_by_id(start(c), JIANGUO, "1")


def _pool(c: Any) -> None:
    verify_by_id(start(c), JIANGUO, "2")


def _transactions(c: Any) -> None:
    verify_by_id(start(c), JIANGUO, "3")


def _policy(c: Any) -> None:
    start(c).press("4")


def _policy_topic(key: str) -> Callable[[Any], None]:
    def reach(c: Any) -> None:
        start(c).press("4").press(key)
    return reach


MENUS: dict[str, Callable[[Any], None]] = {
    "main": _main,
    "verify_method": _verify_method,
    "id_confirm": _id_confirm,
    "balance": _balance,
    "pool": _pool,
    "transactions": _transactions,
    "policy": _policy,
    "policy_pool": _policy_topic("1"),
    "policy_pool_who": lambda c: start(c).press("4").press("1").press("1"),
    "policy_pool_bind": lambda c: start(c).press("4").press("1").press("4"),
    "policy_withdrawal": _policy_topic("2"),
    "policy_fraud": _policy_topic("3"),
}


@pytest.mark.parametrize("menu", list(MENUS))
def test_star_repeats_and_9_returns_to_main_in_every_menu(caller: Any, menu: str) -> None:
    MENUS[menu](caller)
    entered = texts(caller)
    caller.press("*")
    assert texts(caller) == entered
    caller.press("9")
    assert texts(caller) == [MAIN]


@pytest.mark.parametrize("menu", list(MENUS))
def test_0_asks_for_an_agent_from_every_menu(caller: Any, menu: str) -> None:
    MENUS[menu](caller)
    caller.press("0")
    assert texts(caller) == QUEUED
    assert_transferred(caller)


# --- 3. verification by ID number ---------------------------------------------------------------

def test_id_readback_then_confirm_asks_for_the_password(caller: Any) -> None:
    start(caller).press("1")
    assert texts(caller) == [VERIFY_METHOD]
    caller.press("1")
    assert texts(caller) == [ID_ENTRY]
    caller.press(JIANGUO.id_number + "#")
    assert texts(caller) == [readback("0 0 1 3")]
    caller.press("1")
    assert texts(caller) == [PASSWORD]
    caller.press(JIANGUO.password + "#")
    assert texts(caller) == [JIANGUO_BALANCE, RESULT_MENU]


def test_id_readback_2_re_enters_the_number(caller: Any) -> None:
    start(caller).press("1").press("1").press(CHENLI.id_number + "#")
    assert texts(caller) == [readback("0 0 2 2")]
    caller.press("2")
    assert texts(caller) == [ID_ENTRY]
    caller.press(WUFANG.id_number + "#")
    assert texts(caller) == [readback("0 2 6 3")]
    caller.press("1").press(WUFANG.password + "#")  # the re-entered number is the one checked
    assert texts(caller)[0] == balance_employee("零元", "一百二十元")


def test_star_stands_for_x(caller: Any) -> None:
    start(caller).press("1").press("1").press(XIUYING.id_number + "#")
    assert texts(caller) == [readback("0 0 2 X")]
    caller.press("1").press(XIUYING.password + "#")
    assert texts(caller) == [balance_employee("十元五角", "两百一十元"), RESULT_MENU]


def test_legacy_15_digit_number_of_a_demo_person(caller: Any) -> None:
    # 李建国's number without the century "19" and the check digit: upgraded to 18 for lookup
    start(caller).press("1").press("1").press("450102750315001#")
    assert texts(caller) == [readback("5 0 0 1")]  # the last four the caller typed
    caller.press("1").press(JIANGUO.password + "#")
    assert texts(caller)[0] == JIANGUO_BALANCE


def test_legacy_15_digit_number_of_nobody_gets_the_wrong_password_answer(caller: Any) -> None:
    start(caller).press("1").press("1").press("450102800101001#")  # -> 450102198001010015
    assert texts(caller) == [readback("1 0 0 1")]
    caller.press("1").press("123456#")
    unknown = texts(caller)
    caller.hangup()  # the same try of a new call: the same words
    start(caller).press("1").press("1").press(JIANGUO.id_number + "#").press("1")
    caller.press("000000#")
    assert texts(caller) == unknown == [PASSWORD_WRONG, PASSWORD]


@pytest.mark.parametrize(
    "keys",
    [
        "450102197503150012",  # wrong check digit
        "45010219750315001",  # 17 characters
        "4501021975031500133",  # 19 characters
        "45010219750315",  # 14 characters
        "450102197502300016",  # 30 February, right check digit
        "450102209901010011",  # born in 2099, right check digit
        "4501021975031500*3",  # * (X) not at the end
    ],
    ids=["check-digit", "17", "19", "14", "impossible-date", "future-date", "x-inside"],
)
def test_malformed_id_number(caller: Any, keys: str) -> None:
    start(caller).press("1").press("1").press(keys + "#")
    assert texts(caller) == [ID_MALFORMED, ID_ENTRY]
    assert not any(prompt_pattern("id_readback").search(t) for t in texts(caller))


def test_third_malformed_id_number_transfers_when_staffed(caller: Any) -> None:
    start(caller).press("1").press("1")
    caller.press("450102197503150012#").press("45010219750315001#")
    assert texts(caller) == [ID_MALFORMED, ID_ENTRY]
    caller.press("450102197502300016#")
    assert texts(caller) == [TOO_MANY_INVALID, *QUEUED]
    assert_transferred(caller)


def test_third_malformed_id_number_says_goodbye_when_unstaffed(caller: Any, clock: Any) -> None:
    clock.now = UNSTAFFED
    start(caller).press("1").press("1")
    caller.press("450102197503150012#").press("45010219750315001#").press("450102197502300016#")
    assert texts(caller) == [TOO_MANY_INVALID, GOODBYE]
    assert dials(caller) == []
    assert_goodbye_then_hangup(caller)


# --- 3. verification by card number -------------------------------------------------------------

def test_card_number_then_password(caller: Any) -> None:
    start(caller).press("1").press("2")
    assert texts(caller) == [CARD_ENTRY]
    caller.press(CHENLI_CARD + "#")
    assert texts(caller) == [PASSWORD]
    caller.press(CHENLI.password + "#")
    assert texts(caller) == [balance_employee("一千零一元零一分", "九十八元四角"), RESULT_MENU]


def test_card_verification_leads_to_the_chosen_menu(caller: Any) -> None:
    verify_by_card(start(caller), CHENLI_CARD, CHENLI.password, "2")
    assert texts(caller) == [*POOL["both-roles"][1], RESULT_MENU]


def test_card_digits_shared_by_two_cards_ask_for_the_id_number(caller: Any) -> None:
    """Only after the password: before it, a shared card answers like any other card."""
    start(caller).press("1").press("2").press("12345678#")  # A12345678 and B12345678
    assert texts(caller) == [PASSWORD]
    caller.press("000000#")
    assert texts(caller) == [CARD_AMBIGUOUS, ID_ENTRY]
    caller.press(WUFANG.id_number + "#")
    assert texts(caller) == [readback("0 2 6 3")]
    caller.press("1").press(WUFANG.password + "#")
    assert texts(caller) == [balance_employee("零元", "一百二十元"), RESULT_MENU]


@pytest.mark.parametrize("keys", ["1234", "1234567890", "12*45678"])
def test_malformed_card_number(caller: Any, keys: str) -> None:
    start(caller).press("1").press("2").press(keys + "#")
    assert texts(caller) == [CARD_MALFORMED, CARD_ENTRY]


def test_unknown_card_and_wrong_password_sound_the_same(caller: Any) -> None:
    start(caller).press("1").press("2").press(UNKNOWN_CARD + "#")
    assert texts(caller) == [PASSWORD]  # nothing tells the caller the card does not exist
    caller.press(CHENLI.password + "#")
    unknown = texts(caller)
    caller.hangup()  # the same try of a new call: the same words
    start(caller).press("1").press("2").press(CHENLI_CARD + "#").press("000000#")
    wrong = texts(caller)
    assert unknown == wrong == [PASSWORD_WRONG, PASSWORD]


# --- 3.4 password -------------------------------------------------------------------------------

def test_wrong_password_asks_the_password_again_for_the_same_number(caller: Any) -> None:
    start(caller).press("1").press("1").press(JIANGUO.id_number + "#").press("1")
    caller.press("000000#")
    assert texts(caller) == [PASSWORD_WRONG, PASSWORD]  # not the method, not the ID number
    caller.press(JIANGUO.password + "#")
    assert texts(caller) == [JIANGUO_BALANCE, RESULT_MENU]


def test_wrong_password_by_card_asks_the_password_again(caller: Any) -> None:
    start(caller).press("3").press("2").press(CHENLI_CARD + "#").press("000000#")
    assert texts(caller) == [PASSWORD_WRONG, PASSWORD]
    caller.press(CHENLI.password + "#")
    assert texts(caller)[0] == say("tx_count", count="两")


def test_a_lone_star_after_a_wrong_password_keys_another_number(caller: Any) -> None:
    start(caller).press("1").press("1").press(CHENLI.id_number + "#").press("1")
    caller.press(JIANGUO.password + "#")  # 陈丽's number by mistake
    assert texts(caller) == [PASSWORD_WRONG, PASSWORD]
    another_number(caller)
    retry_by_id(caller, JIANGUO, JIANGUO.password)
    assert texts(caller) == [JIANGUO_BALANCE, RESULT_MENU]


def test_the_password_prompt_after_a_wrong_one_is_said_again_on_silence(caller: Any) -> None:
    start(caller).press("1").press("1").press(JIANGUO.id_number + "#").press("1")
    caller.press("000000#").silence()
    assert texts(caller) == [NO_INPUT, PASSWORD]
    caller.press(JIANGUO.password + "#")
    assert texts(caller)[0] == JIANGUO_BALANCE


@pytest.mark.parametrize("keys", ["13579", "1357900", "135*90", "*1", "1" * 30])
def test_a_password_of_the_wrong_length_is_an_invalid_entry(caller: Any, keys: str) -> None:
    start(caller).press("1").press("1").press(JIANGUO.id_number + "#").press("1")
    caller.press(keys + "#")
    assert texts(caller) == [PASSWORD_MALFORMED, PASSWORD]
    caller.press(JIANGUO.password + "#")  # not a try: the right one still works
    assert texts(caller)[0] == JIANGUO_BALANCE


def test_wrong_lengths_do_not_use_up_the_calls_tries(caller: Any, clock: Any) -> None:
    """Two wrong passwords, wrong lengths between them, then the right one: verified (three
    counted failures would have ended verification for the call)."""
    start(caller).press("1").press("1").press(JIANGUO.id_number + "#").press("1")
    for keys in ("000000", "12345", "000001", "1234567"):
        caller.press(keys + "#")
    assert texts(caller) == [PASSWORD_MALFORMED, PASSWORD]
    caller.press(JIANGUO.password + "#")
    assert texts(caller)[0] == JIANGUO_BALANCE


def test_third_wrong_length_in_a_row_transfers_when_staffed(caller: Any) -> None:
    start(caller).press("1").press("1").press(JIANGUO.id_number + "#").press("1")
    caller.press("12345#").press("1234567#")
    assert texts(caller) == [PASSWORD_MALFORMED, PASSWORD]
    caller.press("1#")
    assert texts(caller) == [TOO_MANY_INVALID, *QUEUED]
    assert_transferred(caller)


def test_third_wrong_length_in_a_row_says_goodbye_when_unstaffed(caller: Any,
                                                                 clock: Any) -> None:
    clock.now = UNSTAFFED
    start(caller).press("1").press("1").press(JIANGUO.id_number + "#").press("1")
    caller.press("000000#")  # a wrong password first: the password is asked again
    caller.press("12345#").press("1234567#").press("**#")
    assert texts(caller) == [TOO_MANY_INVALID, GOODBYE]
    assert dials(caller) == []
    assert_goodbye_then_hangup(caller)


def test_a_wrong_password_ends_a_row_of_wrong_lengths(caller: Any, clock: Any) -> None:
    """Like a valid key in a menu: the invalid entries are counted in a row."""
    clock.now = UNSTAFFED
    start(caller).press("1").press("1").press(JIANGUO.id_number + "#").press("1")
    caller.press("12345#").press("1234567#").press("000000#")
    assert texts(caller) == [PASSWORD_WRONG, PASSWORD]
    caller.press("12345#").press("1234567#")
    assert texts(caller) == [PASSWORD_MALFORMED, PASSWORD]
    caller.press(JIANGUO.password + "#")
    assert texts(caller)[0] == JIANGUO_BALANCE


def _three_wrong_unknown_cards(caller: Any) -> None:
    caller.press("1").press("2").press(UNKNOWN_CARD + "#")
    for wrong in (PASSWORD_WRONG, LAST_TRY):
        caller.press("123456#")
        assert texts(caller) == [wrong, PASSWORD]
    caller.press("123456#")


def test_three_wrong_in_one_call_transfer_when_staffed(caller: Any) -> None:
    start(caller)
    _three_wrong_unknown_cards(caller)
    assert texts(caller) == [VERIFICATION_FAILED, *QUEUED]
    assert_transferred(caller)


def test_three_wrong_in_one_call_say_goodbye_when_unstaffed(caller: Any, clock: Any) -> None:
    clock.now = UNSTAFFED
    start(caller)
    _three_wrong_unknown_cards(caller)
    assert texts(caller) == [VERIFICATION_FAILED, GOODBYE]
    assert dials(caller) == []
    assert_goodbye_then_hangup(caller)


def _three_wrong_for_one_person(caller: Any) -> None:
    caller.press("1").press("1").press(JIANGUO.id_number + "#").press("1")
    for wrong in (PASSWORD_WRONG, LAST_TRY):
        caller.press("000000#")
        assert texts(caller) == [wrong, PASSWORD]
    caller.press("000000#")
    assert texts(caller)[0] == VERIFICATION_FAILED  # the third failure also locks 李建国


@pytest.mark.parametrize(
    "three_failures", [_three_wrong_unknown_cards, _three_wrong_for_one_person],
    ids=["unknown-numbers", "one-person-now-locked"],
)
def test_no_fourth_verification_in_a_call(caller: Any, three_failures: Any) -> None:
    """docs/call-flow.md §3.4: the third failed check in a call ends verification for the call.

    Here the caller leaves the agent queue, so is back at the main menu; asking for
    data again must not let a fourth number/password pair be tried in the same call.
    """
    start(caller)
    three_failures(caller)
    assert texts(caller)[-len(QUEUED):] == QUEUED
    assert_transferred(caller)
    heard: list[str] = []
    caller.press("1")
    heard += texts(caller)
    if texts(caller) == [VERIFY_METHOD]:  # whatever the fix, walk on as a caller would
        caller.press("2").press(CHENLI_CARD + "#")
        heard += texts(caller)
        if texts(caller) == [PASSWORD]:
            caller.press(CHENLI.password + "#")
            heard += texts(caller)
    assert not any("一千零一元零一分" in t for t in heard), heard
    assert VERIFICATION_FAILED in heard, heard


# --- 3.4 lockout across calls -------------------------------------------------------------------

def _one_call_by_id(caller: Any, person: Person, password: str, **dial: Any) -> list[str]:
    verify_by_id(start(caller, **dial), Person(person.id_number, password))
    said = texts(caller)
    caller.hangup()
    return said


def test_lockout_across_calls_survives_restart_and_cli_unlock(
    runner: CliRunner, caller: Any, app_settings: Settings, clock: Any, db_url: str
) -> None:
    wrong = Person(WUFANG.id_number, "000000")
    assert _one_call_by_id(caller, wrong, wrong.password) == [PASSWORD_WRONG, PASSWORD]
    assert _one_call_by_id(caller, wrong, wrong.password) == [PASSWORD_WRONG, PASSWORD]
    # the third locks the password; it sounds like any wrong password
    assert _one_call_by_id(caller, wrong, wrong.password) == [PASSWORD_WRONG, PASSWORD]
    # now even the right password gets no data, and sounds the same
    assert _one_call_by_id(caller, WUFANG, WUFANG.password) == [PASSWORD_WRONG, PASSWORD]

    # a new app instance (a restart) on the same database: still locked
    restarted = create_app(app_settings, now=clock)
    try:
        other = Simulator(WsgiTransport(restarted), "http://localhost/voice")
        call = other.dial()
        for keys in ("1", "1", "1", WUFANG.id_number + "#", "1", WUFANG.password + "#"):
            call.press(keys)
        assert [u.text for u in call.said] == [PASSWORD_WRONG, PASSWORD]
        call.hangup()
        call.close()
    finally:
        restarted.extensions["ivr12333"].db.dispose()

    result = runner.invoke(cli, ["--database-url", db_url, "unlock", WUFANG.id_number])
    assert result.exit_code == 0, result.output
    assert "unlocked **************0263" in result.output
    said = _one_call_by_id(caller, WUFANG, WUFANG.password)
    assert said == [balance_employee("零元", "一百二十元"), RESULT_MENU]


def test_lockout_counts_only_consecutive_failures(caller: Any) -> None:
    for _ in range(2):  # wrong, wrong, right: the right one clears the count
        verify_by_id(start(caller), Person(WUFANG.id_number, "000000"))
        assert texts(caller) == [PASSWORD_WRONG, PASSWORD]
        caller.press("000000#")
        assert texts(caller) == [LAST_TRY, PASSWORD]
        caller.press(WUFANG.password + "#")
        assert texts(caller)[0] == balance_employee("零元", "一百二十元")
        caller.hangup()


# --- 3.5 verified once per call -----------------------------------------------------------------

def test_verified_once_per_call(caller: Any) -> None:
    verify_by_id(start(caller), JIANGUO, "1")
    assert texts(caller)[0] == JIANGUO_BALANCE
    caller.press("9").press("2")
    assert texts(caller)[0] == say("pool_funder_count", count="四")
    caller.press("9").press("3")
    assert texts(caller)[0] == say("tx_count", count="五")
    caller.press("9").press("1")
    assert texts(caller)[0] == JIANGUO_BALANCE


# --- 4. balance ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("person", "expected"),
    [
        (JIANGUO, JIANGUO_BALANCE),
        (CHENLI, balance_employee("一千零一元零一分", "九十八元四角")),
        (WUFANG, balance_employee("零元", "一百二十元")),
        (XIUYING, balance_employee("十元五角", "两百一十元")),
        (LIMING, BALANCE_RESIDENT),
        (ZHOUQIANG, BALANCE_SUSPENDED),
    ],
    ids=["employee", "employee-1001.01", "zero", "x-10.50", "resident", "suspended"],
)
def test_balance(caller: Any, person: Person, expected: str) -> None:
    verify_by_id(start(caller), person, "1")
    assert texts(caller) == [expected, RESULT_MENU]


# --- 5. family-pool status ----------------------------------------------------------------------

def member(relation: str, name: str, since: str) -> str:
    """One family member the caller funds, as said."""
    return say("pool_member", who=relation + name, since=since)


def funder(relation: str, name: str, since: str) -> str:
    """One relative who funds the caller, as said."""
    return say("pool_funder", who=relation + name, since=since)


POOL = {
    "funder": (JIANGUO, [
        say("pool_funder_count", count="四"),
        member("妻子", "陈女士", "2023年1月10日"),
        member("儿子", "李先生", "2023年1月10日"),
        member("女儿", "", "2024年3月1日"),  # eleven: no 女士
        member("父亲", "李先生", "2024年8月1日"),
        say("pool_remaining", limit="七", remaining="三"),
    ]),
    "beneficiary-of-two": (XIAOYU, [
        say("pool_beneficiary_count", count="两"),  # 两位, never 二位, before a classifier
        funder("母亲", "陈女士", "2023年6月15日"),
        funder("父亲", "李先生", "2024年3月1日"),
        # a resident has no account of her own: the funders only, in binding-date order
        say("pool_order_funders", order="母亲陈女士、父亲李先生"),
    ]),
    "beneficiary-of-one": (LIMING, [
        say("pool_beneficiary_count_one"),
        funder("父亲", "李先生", "2023年1月10日"),
        say("pool_order_funders_one", order="父亲李先生"),
    ]),
    "both-roles": (CHENLI, [
        say("pool_funder_count_one"),
        member("女儿", "", "2023年6月15日"),  # eleven: no 女士
        say("pool_remaining", limit="七", remaining="六"),
        say("pool_beneficiary_count_one"),
        funder("丈夫", "李先生", "2023年1月10日"),
        say("pool_order_own_first_one", order="丈夫李先生"),
    ]),
    "employee-unbound": (WUFANG, [POOL_NONE_EMPLOYEE]),
    "resident-unfunded": (XIAOLONG, [POOL_NONE_RESIDENT]),
}


@pytest.mark.parametrize("case", list(POOL))
def test_pool_status(caller: Any, case: str) -> None:
    person, expected = POOL[case]
    verify_by_id(start(caller), person, "2")
    assert texts(caller) == [*expected, RESULT_MENU]


# --- 6. recent transactions ---------------------------------------------------------------------

def spent(date: str, kind: str, amount: str) -> str:
    return say("tx_spend", date=date, kind=kind, amount=amount)


def credited(date: str, amount: str) -> str:
    return say("tx_credit", date=date, amount=amount)


TRANSACTIONS = {
    "five-newest-first": (JIANGUO, [
        say("tx_count", count="五"),
        spent("2026年11月3日", "定点药店购药", "三十二元五角"),
        credited("2026年11月1日", "一百五十元"),
        say("tx_pool_payment", date="2026年10月20日", who="儿子李先生", amount="一百二十元"),
        spent("2026年10月11日", "门诊", "八十五元二角"),
        spent("2026年9月2日", "住院", "一千五百元"),
    ]),
    "two": (CHENLI, [
        say("tx_count", count="两"),  # 两笔, never 二笔, before a classifier
        spent("2026年11月12日", "门诊", "四十六元八角"),
        credited("2026年11月1日", "九十八元四角"),
    ]),
    "none": (WUFANG, [TX_NONE]),
}


@pytest.mark.parametrize("case", list(TRANSACTIONS))
def test_transactions(caller: Any, case: str) -> None:
    person, expected = TRANSACTIONS[case]
    verify_by_id(start(caller), person, "3")
    assert texts(caller) == [*expected, RESULT_MENU]


def test_transactions_leave_out_the_sixth_oldest(caller: Any) -> None:
    verify_by_id(start(caller), JIANGUO, "3")
    read = [m.groupdict() for t in texts(caller)
            for pid in ("tx_spend", "tx_refund", "tx_credit", "tx_pool_payment")
            if (m := prompt_pattern(pid).fullmatch(t))]
    assert len(read) == 5, texts(caller)
    assert not [r for r in read if r["date"] == "2026年8月30日" or r["amount"] == "十二元"], read


# --- 8. agent -----------------------------------------------------------------------------------

def test_agent_staffed_puts_the_caller_in_the_queue(caller: Any) -> None:
    start(caller).press("0")
    assert texts(caller) == QUEUED
    assert [e.text for e in caller.call.transcript if e.kind == "queue"][0].startswith(
        "enters queue ivr12333-450100")
    assert_transferred(caller)
    caller.press("4")  # the call goes on
    assert texts(caller) == [POLICY_MENU]


@pytest.mark.parametrize(
    "now",
    [
        UNSTAFFED,  # Sunday 15:00 Beijing
        datetime(2026, 11, 21, 2, 0, tzinfo=UTC),  # Saturday 10:00
        datetime(2026, 11, 23, 0, 59, tzinfo=UTC),  # Monday 08:59
        datetime(2026, 11, 23, 4, 30, tzinfo=UTC),  # Monday 12:30, lunch
        datetime(2026, 11, 23, 9, 0, tzinfo=UTC),  # Monday 17:00, closed
    ],
    ids=["sunday", "saturday", "before-9", "lunch", "at-17"],
)
def test_agent_outside_hours_says_the_hours(caller: Any, clock: Any, now: datetime) -> None:
    clock.now = now
    start(caller).press("0")
    assert texts(caller) == [AGENT_CLOSED, MAIN]
    assert dials(caller) == []
    assert not caller.ended


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 23, 1, 0, tzinfo=UTC),  # Monday 09:00
        datetime(2026, 11, 23, 5, 0, tzinfo=UTC),  # Monday 13:00
        datetime(2026, 11, 27, 8, 59, tzinfo=UTC),  # Friday 16:59
    ],
    ids=["mon-9", "mon-13", "fri-16:59"],
)
def test_agent_within_hours_transfers(caller: Any, clock: Any, now: datetime) -> None:
    clock.now = now
    start(caller).press("0")
    assert texts(caller) == QUEUED
    assert_transferred(caller)


def test_suspended_caller_presses_0_from_the_balance(caller: Any) -> None:
    verify_by_id(start(caller), ZHOUQIANG, "1")
    assert texts(caller)[0] == BALANCE_SUSPENDED
    caller.press("0")
    assert texts(caller) == QUEUED
    assert_transferred(caller)


# --- conventions: no input ----------------------------------------------------------------------

def _id_entry(c: Any) -> None:
    start(c).press("1").press("1")


def _card_entry(c: Any) -> None:
    start(c).press("1").press("2")


def _password(c: Any) -> None:
    start(c).press("1").press("1").press(JIANGUO.id_number + "#").press("1")


SILENCE_STATES: dict[str, Callable[[Any], None]] = {
    **{name: reach for name, reach in MENUS.items() if name not in ("pool", "transactions")},
    "id_entry": _id_entry,
    "card_entry": _card_entry,
    "password": _password,
}


@pytest.mark.parametrize("state", list(SILENCE_STATES))
def test_silence_replays_then_third_silence_ends_the_call(caller: Any, state: str) -> None:
    SILENCE_STATES[state](caller)
    entered = texts(caller)
    for _ in range(2):
        caller.silence()
        assert texts(caller) == [NO_INPUT, *entered]
        assert not caller.ended
    caller.silence()
    assert texts(caller) == [GOODBYE]
    assert_goodbye_then_hangup(caller)


def test_a_key_resets_the_silence_count(caller: Any) -> None:
    start(caller)
    caller.silence(2)
    caller.press("*")
    assert texts(caller) == [MAIN]
    caller.silence(2)
    assert texts(caller)[-2:] == [NO_INPUT, MAIN]
    assert not caller.ended
    caller.silence()
    assert_goodbye_then_hangup(caller)


def test_an_invalid_key_also_breaks_a_run_of_silences(caller: Any) -> None:
    start(caller)
    caller.silence(2)
    caller.press("5")
    caller.silence(2)
    assert not caller.ended


def test_silence_at_the_welcome_does_not_count_for_the_main_menu(caller: Any) -> None:
    caller.dial()
    caller.silence()
    assert texts(caller) == [MAIN]
    caller.silence(2)
    assert not caller.ended
    caller.silence()
    assert_goodbye_then_hangup(caller)


# --- conventions: invalid key -------------------------------------------------------------------

INVALID_MENUS = {name: MENUS[name] for name in ("main", "verify_method", "id_confirm",
                                                "balance", "policy", "policy_fraud")}


@pytest.mark.parametrize("menu", list(INVALID_MENUS))
def test_invalid_key_says_so_and_replays(caller: Any, menu: str) -> None:
    INVALID_MENUS[menu](caller)
    entered = texts(caller)
    caller.press("5")
    assert texts(caller) == [INVALID, *entered]


def test_hash_is_an_invalid_key_in_a_menu(caller: Any) -> None:
    start(caller).press("#")
    assert texts(caller) == [INVALID, MAIN]


@pytest.mark.parametrize("menu", ["main", "verify_method", "policy"])
def test_third_invalid_key_transfers_when_staffed(caller: Any, menu: str) -> None:
    INVALID_MENUS[menu](caller)
    caller.press("5").press("6")
    assert not caller.ended and dials(caller) == []
    caller.press("7")
    assert texts(caller) == [TOO_MANY_INVALID, *QUEUED]
    assert_transferred(caller)


def test_third_invalid_key_after_leaving_the_queue_is_back_at_main(caller: Any) -> None:
    start(caller).press("5").press("6").press("7")
    assert texts(caller) == [TOO_MANY_INVALID, *QUEUED]
    assert_transferred(caller)
    caller.press("5")  # the count starts again
    assert texts(caller) == [INVALID, MAIN]


@pytest.mark.parametrize("menu", ["main", "verify_method", "policy"])
def test_third_invalid_key_says_goodbye_when_unstaffed(
    caller: Any, clock: Any, menu: str
) -> None:
    clock.now = UNSTAFFED
    INVALID_MENUS[menu](caller)
    caller.press("5").press("6").press("7")
    assert texts(caller) == [TOO_MANY_INVALID, GOODBYE]
    assert dials(caller) == []
    assert_goodbye_then_hangup(caller)


def test_counts_are_per_menu(caller: Any) -> None:
    start(caller)
    caller.press("5").press("5")
    caller.silence(2)
    caller.press("4")  # policy: a new menu, counts start again
    assert texts(caller) == [POLICY_MENU]
    caller.press("5").press("5")
    caller.silence(2)
    assert dials(caller) == [] and not caller.ended
    caller.silence()
    assert_goodbye_then_hangup(caller)


def test_a_valid_key_resets_the_invalid_count(caller: Any) -> None:
    start(caller)
    caller.press("5").press("6").press("*").press("5").press("6")
    assert texts(caller) == [INVALID, MAIN]
    assert dials(caller) == [] and not caller.ended


# --- TwiML: every <Gather> is followed by a verb that handles silence ---------------------------

def _post(client: Any, url: str, **params: str) -> ElementTree.Element:
    form = {"CallSid": "CA" + "0" * 32, "From": "+8613800000009", "To": "+8612333", **params}
    response = client.post(url, data=form)
    assert response.status_code == 200
    return ElementTree.fromstring(response.data)


def test_no_dead_air_after_any_gather(client: Any) -> None:
    steps = [("/voice", {}), ("/voice/step?s=1", {"Digits": "1"}),
             ("/voice/step?s=2", {"Digits": "1"}), ("/voice/step?s=3", {"Digits": "1"})]
    kinds = []
    for url, params in steps:
        doc = _post(client, url, **params)
        verbs = list(doc)
        gathers = [i for i, v in enumerate(verbs) if v.tag == "Gather"]
        assert gathers, ElementTree.tostring(doc)
        for i in gathers:
            assert verbs[i + 1].tag == "Redirect"
            assert "e=silence" in (verbs[i + 1].text or "")
        kinds.append(verbs[gathers[0]].get("numDigits"))
    # welcome, main, method: one key; ID entry: keys ended by #
    assert kinds == ["1", "1", "1", None]
    assert verbs[gathers[0]].get("finishOnKey") == "#"


# --- per-caller-number limit --------------------------------------------------------------------

class TestVerificationAttemptsPerCallerNumber:
    @pytest.fixture
    def app_settings(self, db_url: str) -> Settings:
        return Settings(database_url=db_url, verify_attempts_per_hour=3,
                        pin_key_file=key_file_of_tests())

    def test_more_than_the_limit_ends_the_call_even_on_a_new_call(self, caller: Any) -> None:
        phone = "+8613911110001"
        start(caller, from_=phone).press("1")
        for wrong in (PASSWORD_WRONG, LAST_TRY):
            caller.press("2").press(UNKNOWN_CARD + "#").press("123456#")
            assert texts(caller) == [wrong, PASSWORD]
            another_number(caller)
        retry_by_id(caller, JIANGUO, JIANGUO.password)  # the third attempt, still allowed
        assert texts(caller)[0] == JIANGUO_BALANCE
        caller.hangup()

        verify_by_id(start(caller, from_=phone), JIANGUO, "1")  # a fourth, on a new call
        assert texts(caller) == [TOO_MANY_ATTEMPTS, GOODBYE]
        assert_goodbye_then_hangup(caller)

        verify_by_id(start(caller, from_="+8613911110002"), JIANGUO, "1")  # another phone
        assert texts(caller) == [JIANGUO_BALANCE,
                                 RESULT_MENU]

    def test_limit_reached_inside_a_call(self, caller: Any) -> None:
        phone = "+8613911110003"
        start(caller, from_=phone).press("1")
        caller.press("2").press(UNKNOWN_CARD + "#").press("123456#").press("123456#")
        caller.hangup()
        start(caller, from_=phone).press("2")
        caller.press("2").press(UNKNOWN_CARD + "#").press("123456#")  # third: still checked
        assert texts(caller) == [PASSWORD_WRONG, PASSWORD]
        another_number(caller)
        retry_by_id(caller, WUFANG, WUFANG.password)  # fourth: refused, right password or not
        assert texts(caller) == [TOO_MANY_ATTEMPTS, GOODBYE]
        assert_goodbye_then_hangup(caller)


# --- what a native speaker heard wrong in the review of 90 calls -------------------------------

from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

from conftest import SCRIPTS, play_script  # noqa: E402
from servers import key_file_of_tests, keyring_of_tests  # noqa: E402
from sqlalchemy import delete, update  # noqa: E402

from ivr.dataset.importer import DatasetInvalid, import_dataset, load_file  # noqa: E402
from ivr.domain.policy import relation_to_funder, relation_to_member  # noqa: E402
from ivr.resources import demo_dataset  # noqa: E402
from ivr.store.schema import (  # noqa: E402
    agents,
    bindings,
    ensure_schema,
    make_engine,
    people,
    regions,
)


def _change(db_url: str, *statements: Any) -> None:
    """Change the demo data under the app (the line reads it on every turn)."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)
    engine.dispose()


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_no_voice_is_sent_an_asterisk_nor_english_a_chinese_character(
        app_factory: Any, script: Path) -> None:
    """A masked name is read 星号/asterisk or as another person (李*雨 → 李雨); an English voice
    can't read 陈: every <Say> of every project call is text a voice can say."""
    result = play_script(app_factory, script)
    assert result.passed, result.report()
    says = [e.text.rsplit("  (", 1) for e in result.transcript if e.kind == "say"]
    assert says
    assert [text for text, _ in says if "*" in text] == []
    assert [text for text, voice in says if "en-US" in voice and CJK.search(text)] == []


def test_pool_names_are_relation_surname_and_title(caller: Any) -> None:
    verify_by_id(start(caller), JIANGUO, "2")
    pool = texts(caller)
    assert "您的儿子李先生,绑定日期为2023年1月10日。" in pool  # 李明, never 李*明 nor 李明
    assert "您的女儿,绑定日期为2024年3月1日。" in pool  # 李小雨 is eleven: no 女士
    assert not [t for t in pool if "*" in t or "李小雨" in t]


def test_english_pool_names_are_romanised(caller: Any) -> None:
    verify_by_id(start(caller, "2"), XIAOYU, "2")
    pool = texts(caller)
    assert "your mother, Ms Chen, since June 15, 2023." in pool
    assert say("pool_order_funders", "en-US",
               order="your mother, Ms Chen, your father, Mr Li") in pool
    assert not [t for t in pool if CJK.search(t)]


def test_a_suspended_caller_hears_the_balance_and_no_contradiction(
        caller: Any, db_url: str) -> None:
    # 周强 (suspended) is also funded by 李建国: the pool must not offer his own account first
    _change(db_url, bindings.insert().values(
        funder=JIANGUO.id_number, member=ZHOUQIANG.id_number, relationship="sibling",
        since=date(2025, 1, 1)))
    verify_by_id(start(caller), ZHOUQIANG, "1")
    balance = texts(caller)[0]
    assert "八十八元" in balance and "归您本人所有" in balance
    caller.press("9").press("2")
    pool = "".join(texts(caller))
    assert "先使用您本人的个人账户" not in pool
    assert say("pool_order_suspended") in texts(caller)


def test_a_region_without_agents_offers_no_0(caller: Any, db_url: str) -> None:
    _change(db_url, delete(agents))
    start(caller)
    assert texts(caller) == [say("main_menu_no_agent")]
    assert "按0" not in texts(caller)[0]
    verify_by_id(caller, JIANGUO, "1")
    assert texts(caller) == [JIANGUO_BALANCE, say("result_menu_no_agent")]
    assert "按0" not in texts(caller)[-1]


def test_a_region_with_agents_still_offers_0(caller: Any) -> None:
    start(caller)
    assert texts(caller) == [MAIN]
    assert "人工服务请按0" in MAIN


def test_zero_is_not_read_literally(caller: Any, db_url: str) -> None:
    _change(db_url, update(people).where(people.c.id_number == WUFANG.id_number)
            .values(monthly_credit_fen=0),
            update(regions).values(max_members=4))
    verify_by_id(start(caller), WUFANG, "1")
    assert texts(caller)[0] == say("balance_employee_no_credit", as_of="2026年11月21日",
                                   balance="零元", month="2026年11月")
    assert "2026年11月个人账户暂无划入" in texts(caller)[0]
    assert "划入零元" not in texts(caller)[0]
    caller.hangup()
    verify_by_id(start(caller), JIANGUO, "2")
    pool = texts(caller)
    assert say("pool_full", limit="四") in pool
    assert not [t for t in pool if "绑定零人" in t]


def test_a_single_funder_is_not_used_in_turn(caller: Any) -> None:
    verify_by_id(start(caller), LIMING, "2")
    said = texts(caller)
    assert say("pool_order_funders_one", order="父亲李先生") in said
    assert not [t for t in said if "依次" in t]


def test_twins_are_brother_or_sister_not_younger() -> None:
    born = date(1990, 5, 1)
    assert relation_to_funder("sibling", "male", born, born) == "brother"
    assert relation_to_member("sibling", "female", born, born) == "sister"
    assert relation_to_funder("sibling", "male", date(1991, 1, 1), born) == "younger_brother"
    assert relation_to_funder("sibling", "female", date(1989, 1, 1), born) == "elder_sister"


def test_agent_hours_are_said_as_a_recording_says_them(caller: Any, clock: Any) -> None:
    clock.now = UNSTAFFED
    start(caller).press("0")
    assert "工作日上午9点至12点,下午1点至5点" in texts(caller)[0]
    start(caller, "2").press("0")
    assert "weekdays, 9 a.m. to noon and 1 p.m. to 5 p.m." in texts(caller)[0]


# --- the importer refuses what the line would read as nonsense ------------------------------------

def _import_errors(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> list[str]:
    data = load_file(demo_dataset())
    change(data)
    engine = make_engine(f"sqlite:///{tmp_path / 'check.sqlite3'}")
    ensure_schema(engine)
    try:
        import_dataset(engine, data, keyring=keyring_of_tests())
    except DatasetInvalid as exc:
        return [f"{e.record}: {e.rule}" for e in exc.errors]
    finally:
        engine.dispose()
    return []


def test_import_refuses_a_parent_born_after_the_child(tmp_path: Path) -> None:
    def parent_is_the_daughter(data: dict[str, Any]) -> None:
        # 李建国 (1975) "binds his parent" 李小雨 (2015)
        data["bindings"][3]["relationship"] = "parent"
    errors = _import_errors(tmp_path, parent_is_the_daughter)
    assert len(errors) == 1
    assert errors[0].startswith("bindings[3] (**************0013 -> **************0045): "
                                "relationship: 'parent': the member must be born before")


def test_import_refuses_a_child_born_before_the_parent(tmp_path: Path) -> None:
    def child_is_the_father(data: dict[str, Any]) -> None:
        data["bindings"][2]["relationship"] = "child"  # 李大山 (1952) as 李建国's child
    errors = _import_errors(tmp_path, child_is_the_father)
    assert len(errors) == 1 and "'child': the member must be born after" in errors[0]


def test_import_refuses_a_same_sex_spouse_read_as_husband(tmp_path: Path) -> None:
    def son_as_spouse(data: dict[str, Any]) -> None:
        data["bindings"][1]["relationship"] = "spouse"  # 李明 (male) as 李建国's spouse
    errors = _import_errors(tmp_path, son_as_spouse)
    assert len(errors) == 1
    assert "relationship: 'spouse': funder and member are both male" in errors[0]


def test_import_refuses_transactions_without_a_personal_account(tmp_path: Path) -> None:
    def resident_spends(data: dict[str, Any]) -> None:
        data["transactions"].append({"id_number": LIMING.id_number, "date": "2026-10-01",
                                     "kind": "outpatient", "amount": "-10.00"})
    errors = _import_errors(tmp_path, resident_spends)
    assert len(errors) == 1
    assert errors[0].endswith("(**************0032): id_number: a resident-scheme person has "
                              "no personal account, so no transactions")


def test_the_demo_data_is_plausible(tmp_path: Path) -> None:
    assert _import_errors(tmp_path, lambda data: None) == []
