"""``ember._redact``: what every display shows of user values (secrets, control characters)."""

from __future__ import annotations

import dataclasses
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ember._redact import (
    REDACTED,
    REDACTED_TEXT,
    is_secret_name,
    printable,
    redact,
    redact_text,
    shown,
    shown_arguments,
    shown_text,
)

# Made up, in the formats of real keys: what is kept of each, and the key.
KEYS = [
    ("sk-", "sk-proj-Q7vXb2Lk9PzR4tWm8YcN1dHs6JfA3eGu"),
    ("sk-", "sk-ant-api03-x9K2mQ7vB4nL8pR1sT6wY3zC5dF0hJ"),
    ("Bearer ", "Bearer 7f3a9c1e5b2d8f4a6c0e9b1d3f5a7c9e"),
    ("ghp_", "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"),
    ("hf_", "hf_QwErTyUiOpAsDfGhJkLzXcVbNm1234567890"),
    ("AKIA", "AKIAIOSFODNN7EXAMPLE"),
    ("AIza", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"),
    ("xoxb-", "xoxb-123456789012-abcdefghijkl"),
    ("eyJ", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpM"),
    ("sk_live_", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
]
OPENAI_KEY = KEYS[0][1]


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "apikey",
        "API_KEY",
        "apiKey",
        "x-api-key",
        "X-Api-Key",
        "openai_api_key",
        "Authorization",
        "proxy-authorization",
        "token",
        "access_token",
        "accessToken",
        "hf_token",
        "secret",
        "client_secret",
        "secret_key",
        "password",
        "db_password",
        "cookie",
        "credentials",
        b"authorization",
    ],
)
def test_credential_names_are_secret(name: object) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "prompt",
        "temperature",
        "max_tokens",
        "tokens",
        "eos_token",
        "pad_token",
        "key",
        "prompt_cache_key",
        "keywords",
        "model",
        "secretary_notes_are_long_but_fine_" * 3,  # longer than any name it checks
        "",
        3,
        None,
    ],
)
def test_other_names_are_not(name: object) -> None:
    assert not is_secret_name(name)


# --- structures --------------------------------------------------------------------------


def test_values_under_secret_names_are_redacted_at_any_depth() -> None:
    call = {
        "prompt": "hi",
        "headers": {"Authorization": "Basic dXNlcjpwYXNz", "Accept": "json"},
        "retries": [{"x-api-key": 12345}, ("keep", {"password": b"hunter2"})],
        "api_key": None,  # nothing secret: shown
    }
    out = redact(call)
    assert out == {
        "prompt": "hi",
        "headers": {"Authorization": REDACTED, "Accept": "json"},
        "retries": [{"x-api-key": REDACTED}, ("keep", {"password": REDACTED})],
        "api_key": None,
    }
    assert call["headers"]["Authorization"] == "Basic dXNlcjpwYXNz"  # the original is unchanged
    text = repr(out)
    assert "dXNlcjpwYXNz" not in text and "12345" not in text and "hunter2" not in text
    assert f"'Authorization': {REDACTED_TEXT}" in text and "'api_key': None" in text
    assert shown(call) == text  # the text pass agrees with the structure


def test_nothing_to_redact_returns_the_same_object_and_cycles_end() -> None:
    plain = {"a": [1, 2, {"b": "c"}], "n": (1,)}
    assert redact(plain) is plain
    loop: list = [{"token": "t0ps3cret"}]
    loop.append(loop)
    text = shown(loop)
    assert "t0ps3cret" not in text and "[...]" in text


# --- text --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kept", "key"), KEYS)
def test_key_shaped_values_are_redacted_keeping_their_prefix(kept: str, key: str) -> None:
    assert redact_text(f"use {key} for this") == f"use {kept}{REDACTED_TEXT} for this"
    assert redact_text(f"'{key}'") == f"'{kept}{REDACTED_TEXT}'"


@pytest.mark.parametrize(
    "text",
    [
        "Why is the sky blue?",
        "Compare sk-learn and scikit-learn-contrib-extensions for clustering.",
        "Ask-questions-about-everything-0123 politely.",
        "The bearer of the message arrived; Bearer bonds are paper-instruments.",
        "The token limit is 4096 tokens; a password reset needs your email.",
        "Set temperature=0.7 and max_tokens=256, keep key=value pairs.",
        "{'role': 'user', 'content': 'hello'}",
        "AKIA is not a word, nor is hf_hub_download a key.",
        "https://example.com/v1/chat?model=gpt-4o&stream=true",
        "line one\nline two\ttabbed",
    ],
)
def test_ordinary_text_is_left_as_it_is(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Config(api_key='abc', n=2)", f"Config(api_key={REDACTED_TEXT}, n=2)"),
        ("https://h/v1?api_key=abc123&x=1", f"https://h/v1?api_key={REDACTED_TEXT}&x=1"),
        ('{"password": "hunter2", "user": "me"}', f'{{"password": {REDACTED_TEXT}, "user": "me"}}'),
        ("{'Authorization': 'Basic abc'}", f"{{'Authorization': {REDACTED_TEXT}}}"),
        ('Opts(token="it\'s\\" long", m=1)', f"Opts(token={REDACTED_TEXT}, m=1)"),
        ("Cut(secret='abcdef", f"Cut(secret={REDACTED_TEXT}"),  # a repr cut short
        ("Opts(api_key=None, token='', secret=True)", "Opts(api_key=None, token='', secret=True)"),
    ],
)
def test_values_named_secret_in_text_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected  # and redacting again changes nothing


KEY_ALPHABET = string.ascii_letters + string.digits + "-_"
SEPARATORS = st.sampled_from([" ", "'", '"', "\n", "(", ", ", "=", ": ", "/", "\t"])


@given(
    body=st.text(KEY_ALPHABET, min_size=15, max_size=120),
    digit=st.sampled_from(string.digits),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    left=SEPARATORS,
    right=SEPARATORS,
)
def test_any_openai_shaped_key_in_any_text_is_redacted(
    body: str, digit: str, before: str, after: str, left: str, right: str
) -> None:
    key = f"sk-{digit}{body}"
    text = redact_text(f"{before}{left}{key}{right}{after}")
    assert key not in text
    assert f"{digit}{body}" not in text


# --- what displays show -----------------------------------------------------------------


def test_a_long_key_is_redacted_before_the_cut() -> None:
    key = OPENAI_KEY
    assert shown(f"{key}{'x' * 5000}", 24) == "'sk-<redacted>..."  # all key characters
    text = shown(f"{key} {'x' * 5000}", 24)
    assert len(text) == 24 and text.endswith("...")
    assert not any(key[i : i + 6] in text for i in range(3, len(key) - 6))
    arguments = shown_arguments(("q",), {"params": {"note": f"padding {key}"}}, 24)
    assert not any(key[i : i + 6] in arguments for i in range(3, len(key) - 6))


def test_call_arguments_show_secret_names_redacted() -> None:
    text = shown_arguments(
        ("hello",), {"api_key": "short", "token": None, "headers": {"Cookie": "id=7"}, "n": 2}
    )
    assert text == (
        f"'hello', api_key={REDACTED_TEXT}, token=None, headers={{'Cookie': {REDACTED_TEXT}}}, n=2"
    )


def test_objects_are_shown_by_their_repr_redacted() -> None:
    @dataclasses.dataclass
    class Settings:
        api_key: str
        model: str

    assert shown(Settings("abc", "gpt")) == (
        "test_objects_are_shown_by_their_repr_redacted.<locals>.Settings("
        f"api_key={REDACTED_TEXT}, model='gpt')"
    )

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert shown(Broken()) == "<Broken>"


def test_control_characters_are_escaped_or_replaced() -> None:
    hostile = "a\nb\r\x1b[31mred\x1b[0m\x00\u202e\u2028"
    escaped = printable(hostile)
    assert escaped == "a\\nb\\r\\x1b[31mred\\x1b[0m\\x00\\u202e\\u2028"
    assert escaped.isprintable()
    assert printable(hostile, " ") == "a b  [31mred [0m   "
    assert printable("plain ünïcode ✓") == "plain ünïcode ✓"
    shown_name = shown_text("op\nname\x1b]0;title\x07")
    assert "\n" not in shown_name and "\x1b" not in shown_name and "\x07" not in shown_name
    assert re.fullmatch(r"op\\nname\\x1b\]0;title\\x07", shown_name)


@pytest.mark.parametrize(
    "unit",
    ["sk-", "Bearer ", "Bearer a", "a=", "'a': ", "'", "sk-a-", "eyJ", "x=' "],
    ids=repr,
)
def test_redacting_hostile_text_costs_time_linear_in_its_length(unit: str) -> None:
    from tests.helpers import best_seconds

    def seconds(n: int) -> float:
        text = unit * n
        return best_seconds(lambda: redact_text(text), runs=5)

    seconds(500)
    # Sizes whose times (about 1 and 4 ms) stand above a loaded machine's noise.
    assert seconds(80_000) < 8 * max(seconds(20_000), 1e-4)  # 4x the text: not 16x
