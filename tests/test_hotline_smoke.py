"""The demo call of docs/scripted-calls.md, driven through the simulator against the real app."""

from __future__ import annotations

from typing import Any


def test_balance_by_id_number(caller: Any) -> None:
    caller.dial()
    assert "欢迎致电" in caller.heard
    caller.press("1")
    assert "账户余额查询请按1" in caller.heard
    caller.press("1").press("1").press("450102197503150013#")
    assert "后四位是 0 0 1 3" in caller.heard
    caller.press("1").press("135790#")
    assert (
        "截至2026年11月21日,您的医保个人账户余额为一千二百三十四元五角六分。"
        "本月划入一百五十元。"
    ) in caller.heard
    assert "错误" not in caller.heard
    caller.silence(1)
    assert caller.heard.startswith("您没有输入。")
    caller.hangup()
    assert caller.ended
