from __future__ import annotations

from collections.abc import Callable

import pytest

from broker.consent.tokens import FlowTokens, TokenExpired, TokenInvalid

KEY = "k" * 40


class FakeTime:
    def __init__(self) -> None:
        self.value = 1_800_000_000.0

    def __call__(self) -> float:
        return self.value


def _tokens(time: FakeTime, keys: list[str] | None = None) -> FlowTokens:
    return FlowTokens(keys or [KEY], now=time, start_max_age=3600, return_max_age=900)


def test_start_token_round_trips_and_expires() -> None:
    time = FakeTime()
    tokens = _tokens(time)
    token = tokens.start_token("req-1")
    assert tokens.read_start_token(token) == "req-1"
    time.value += 3601
    with pytest.raises(TokenExpired):
        tokens.read_start_token(token)


def test_return_handle_needs_the_bound_cookie() -> None:
    time = FakeTime()
    tokens = _tokens(time)
    binding = tokens.new_binding()
    handle = tokens.return_handle("req-1", binding)
    assert tokens.read_return_handle(handle, binding.cookie_value) == "req-1"
    other = tokens.new_binding()
    with pytest.raises(TokenInvalid, match="not bound"):
        tokens.read_return_handle(handle, other.cookie_value)
    with pytest.raises(TokenInvalid, match="not bound"):
        tokens.read_return_handle(handle, None)


def test_return_handle_expires() -> None:
    time = FakeTime()
    tokens = _tokens(time)
    binding = tokens.new_binding()
    handle = tokens.return_handle("req-1", binding)
    time.value += 901
    with pytest.raises(TokenExpired):
        tokens.read_return_handle(handle, binding.cookie_value)


def test_a_token_of_one_purpose_is_refused_for_the_other() -> None:
    tokens = _tokens(FakeTime())
    binding = tokens.new_binding()
    with pytest.raises(TokenInvalid):
        tokens.read_return_handle(tokens.start_token("req-1"), binding.cookie_value)
    with pytest.raises(TokenInvalid):
        tokens.read_start_token(tokens.return_handle("req-1", binding))


@pytest.mark.parametrize("tamper", [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), str.upper])
def test_altered_tokens_are_refused(tamper: Callable[[str], str]) -> None:
    tokens = _tokens(FakeTime())
    with pytest.raises(TokenInvalid):
        tokens.read_start_token(tamper(tokens.start_token("req-1")))


def test_a_token_signed_with_another_key_is_refused() -> None:
    time = FakeTime()
    foreign = _tokens(time, ["x" * 40]).start_token("req-1")
    with pytest.raises(TokenInvalid):
        _tokens(time).read_start_token(foreign)


def test_old_keys_still_verify_during_rotation() -> None:
    time = FakeTime()
    old = _tokens(time, [KEY]).start_token("req-1")
    rotated = _tokens(time, ["n" * 40, KEY])
    assert rotated.read_start_token(old) == "req-1"
    fresh = rotated.start_token("req-2")
    with pytest.raises(TokenInvalid):
        _tokens(time, [KEY]).read_start_token(fresh)


def test_garbage_is_refused() -> None:
    tokens = _tokens(FakeTime())
    for garbage in ["", "abc", "a.b.c", "eyJ9.x.y"]:
        with pytest.raises(TokenInvalid):
            tokens.read_start_token(garbage)
