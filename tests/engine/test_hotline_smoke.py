"""The demo call of docs/scripted-calls.md, driven through the simulator against the real app."""

from __future__ import annotations

from typing import Any

from conftest import say


def test_balance_by_id_number(caller: Any) -> None:
    caller.dial()
    assert say("welcome", line="医保服务热线") in caller.heard
    caller.press("1")
    assert say("main_menu") in caller.heard
    caller.press("1").press("1").press("450102197503150013#")
    assert say("id_readback", last4="0 0 1 3") in caller.heard
    caller.press("1").press("135790#")
    balance = say("balance_employee", as_of="2026年11月21日",
                  balance="一千二百三十四元五角六分", credit="一百五十元", month="2026年11月")
    assert caller.heard == f"{balance}\n{say('result_menu')}"  # and no "wrong password"
    caller.silence(1)
    assert caller.heard.startswith(say("no_input"))
    caller.hangup()
    assert caller.ended
