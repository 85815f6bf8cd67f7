r"""What traces, reprs and errors show of user values: secrets redacted, control characters escaped.

Parameters reach many displays -- ``print(trace)``, the drawings, the Chrome trace,
``repr`` of a model binding, error notes -- and some parameters are credentials, some
names and values hold control characters. Every display of user text goes through
this module; nothing here changes a value the program uses, only what is shown.

* :func:`is_secret_name`: whether a parameter, key or header name holds a credential:
  ``api_key``, ``apikey``, ``x-api-key``, ``Authorization``, ``token``,
  ``access_token``, ``client_secret``, ``password``, ``cookie``... in any case, with
  ``-`` or ``_``, in camelCase, or as a suffix (``openai_api_key``, ``hf_token``).
  Tokenizer names (``eos_token``, ``pad_token``) are not credentials.
* :func:`redact`: a copy of a value for display in which every ``dict`` (at any depth,
  inside lists, tuples and sets too) holds :data:`REDACTED` under secret names.
* :func:`redact_text`: text with credentials replaced: known key formats by their
  prefix and :data:`REDACTED_TEXT` (``sk-...``, ``sk-ant-...``, ``Bearer ...``,
  ``ghp_...``, ``hf_...``, ``AKIA...``, ``AIza...``, ``xoxb-...``, JWTs), and the value
  of every ``name=value``, ``'name': value`` or ``"name": value`` whose name is
  secret (a dataclass's repr, a URL query, a mapping's repr). Each format needs its
  exact prefix and a long run of key characters (with a digit, for ``sk-`` and
  ``Bearer``), so prose is left as it is.
* :func:`printable`: control and other invisible characters escaped as ``repr``
  escapes them (``\n``, ``\x1b``), or each replaced by a given string: a shown name
  stays on one line and cannot send a terminal escape sequence or break an XML file.
* :func:`shown` (a value), :func:`shown_text` (a string) and :func:`shown_arguments`
  (a call's): all of the above, each ``repr`` cut to a length -- after redaction, so
  no cut hides a key from it. None, bools and empty strings under secret names are
  shown as they are (``api_key=None`` holds nothing secret).

Not done: a secret without a secret name or a known key format (a random string
passed positionally) is shown as it is. Keys belong in environment variables (see
``docs/models.md``); this is the net under that rule, not the rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "REDACTED",
    "REDACTED_TEXT",
    "is_secret_name",
    "printable",
    "redact",
    "redact_text",
    "shown",
    "shown_arguments",
    "shown_text",
]

REDACTED_TEXT = "<redacted>"
"""What stands where a secret was."""


class _Redacted:
    """The value shown in place of a secret: its repr is ``<redacted>``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return REDACTED_TEXT

    __str__ = __repr__


REDACTED: Any = _Redacted()
"""Put in place of a secret value by :func:`redact`."""

# --- names -------------------------------------------------------------------------------

_SECRET_NAMES = frozenset(
    {
        "auth",
        "authorization",
        "cookie",
        "credential",
        "credentials",
        "passphrase",
        "secret",
        "set_cookie",
        "token",
    }
)
_SECRET_ENDINGS = (
    "api_key",
    "apikey",
    "authorization",
    "credentials",
    "passwd",
    "password",
    "private_key",
    "secret",
    "secret_key",
    "accesstoken",  # camelCase is split first: this is for "accesstoken" as one word
)
_NOT_SECRET_TOKENS = frozenset(
    # Tokenizer settings: text such as "</s>", not credentials.
    f"{word}_token"
    for word in (
        "bos", "cls", "end", "eos", "eot", "first", "image", "last", "mask", "next",
        "pad", "sep", "sos", "start", "stop", "unk",
    )
)  # fmt: skip
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def is_secret_name(name: object) -> bool:
    """Whether a parameter, key or header called ``name`` holds a credential.

    Args:
        name: A parameter name, a dict key or a header name; anything but a ``str``
            (or ``bytes``) is not a secret name.
    """
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    if not isinstance(name, str) or not name or len(name) > 64:
        return False
    words = _CAMEL.sub("_", name).lower().replace("-", "_").strip("_")
    if words in _SECRET_NAMES or words.endswith(_SECRET_ENDINGS):
        return True
    return words.endswith("_token") and words not in _NOT_SECRET_TOKENS


# --- values ------------------------------------------------------------------------------

_MAX_DEPTH = 12  # deeper containers are shown as they are (their text is still redacted)


def _hidden(name: object, value: Any) -> bool:
    """Whether ``value``, given under ``name``, is shown as :data:`REDACTED`.

    Nothing secret is held by None, a bool or an empty string, and seeing
    ``api_key=None`` helps: those are shown.
    """
    if value is None or value is True or value is False or (type(value) is str and not value):
        return False
    return is_secret_name(name)


def redact(value: Any) -> Any:
    """``value`` for display: secrets under secret names replaced by :data:`REDACTED`.

    Walks built-in dicts, lists, tuples, sets and frozensets (not subclasses: their
    repr names their type, and :func:`redact_text` covers their text). What holds
    nothing to redact is returned as it is, the same object.
    """
    if type(value) not in _CONTAINERS:
        return value
    return _redacted(value, 0, set())


_CONTAINERS = frozenset({dict, list, tuple, set, frozenset})


def _redacted(value: Any, depth: int, seen: set[int]) -> Any:
    kind = type(value)
    if kind not in _CONTAINERS or depth > _MAX_DEPTH:
        return value
    if id(value) in seen:  # a container holding itself: repr shows [...] there
        return value
    seen.add(id(value))
    try:
        if kind is dict:
            items = {
                k: REDACTED if _hidden(k, v) else _redacted(v, depth + 1, seen)
                for k, v in value.items()
            }
            same = all(items[k] is v for k, v in value.items())
            return value if same else items
        members = [_redacted(v, depth + 1, seen) for v in value]
        if all(a is b for a, b in zip(members, value, strict=True)):
            return value
        return kind(members) if kind is not list else members
    finally:
        seen.discard(id(value))


# --- text --------------------------------------------------------------------------------

_KEY_CHARS = r"A-Za-z0-9_\-"
# (format, whether its key must hold a digit). Each format captures exactly one group,
# its prefix, which is kept. The digit is checked on the match, not by a lookahead:
# a lookahead scanning the rest of a run at every prefix made "sk-sk-sk-..." quadratic.
_KEY_FORMATS = (
    # OpenAI (sk-, sk-proj-, sk-svcacct-), Anthropic (sk-ant-), DeepSeek and most others
    (rf"(sk-)[{_KEY_CHARS}]{{16,}}", True),
    (r"((?:sk|rk)_(?:live|test)_)[A-Za-z0-9]{16,}", False),  # Stripe
    (r"(gh[pousr]_)[A-Za-z0-9]{20,}", False),  # GitHub
    (r"(github_pat_)[A-Za-z0-9_]{20,}", False),
    (r"(hf_)[A-Za-z0-9]{20,}", False),  # Hugging Face
    (r"(gsk_)[A-Za-z0-9]{20,}", False),  # Groq
    (r"(xai-)[A-Za-z0-9]{20,}", False),  # xAI
    (r"(AIza)[A-Za-z0-9_\-]{30,}", False),  # Google
    (r"((?:AKIA|ASIA))[A-Z0-9]{16}", False),  # AWS access key ids
    (r"(xox[abposr]-)[A-Za-z0-9\-]{10,}", False),  # Slack
    (r"(eyJ)[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", False),  # JWT
    (r"(Bearer\s+)[A-Za-z0-9._~+/=\-]{16,}", True),
)
_NEEDS_DIGIT = frozenset(i for i, (_, digit) in enumerate(_KEY_FORMATS, start=1) if digit)
_DIGIT = re.compile(r"[0-9]")
# The lookahead for the formats' first letters lets the scan skip most positions
# quickly (3-4x faster).
_KEY = re.compile(
    rf"(?=[srghxAeB])(?<![A-Za-z0-9])(?:{'|'.join(f for f, _ in _KEY_FORMATS)})(?![A-Za-z0-9])"
)

_VALUE = (
    r"""(?:'(?:[^'\\\n]|\\.)*'?"""  # a quoted string (or its start, when cut short)
    r"""|"(?:[^"\\\n]|\\.)*"?"""
    r"""|(?![\[({=])[^\s,;&()\]}'"]+)"""  # a bare value (a number, a URL query value)
)
_ASSIGNED = re.compile(rf"(?<![\w\-])([A-Za-z_][\w\-]{{0,63}})(\s*=\s*)({_VALUE})")
_KEYED = re.compile(rf"""(['"])([^'"\n]{{1,64}})(\1\s*:\s*)({_VALUE})""")


def _key(match: re.Match[str]) -> str:
    group = match.lastindex or 0
    prefix = match[group]
    if group in _NEEDS_DIGIT and not _DIGIT.search(match[0], len(prefix)):
        return match[0]  # a run of key characters without a digit: a word, not a key
    return f"{prefix}{REDACTED_TEXT}"


# Shown as they are under a secret name too, as :func:`_hidden` shows them.
_NOTHING_SECRET = frozenset({"None", "True", "False", "''", '""'})


def _assigned(match: re.Match[str]) -> str:
    if match[3] in _NOTHING_SECRET or not is_secret_name(match[1]):
        return match[0]
    return f"{match[1]}{match[2]}{REDACTED_TEXT}"


def _keyed(match: re.Match[str]) -> str:
    if match[4] in _NOTHING_SECRET or not is_secret_name(match[2]):
        return match[0]
    return f"{match[1]}{match[2]}{match[3]}{REDACTED_TEXT}"


def redact_text(text: str) -> str:
    """``text`` with key-shaped values, and values given secret names, redacted.

    ``"Authorization: Bearer sk-proj-abc123..."`` becomes ``"Authorization: Bearer
    <redacted>"``; ``"Config(api_key='x', n=2)"`` becomes ``"Config(api_key=<redacted>,
    n=2)"``; ``"Why is the sky blue?"`` stays as it is.
    """
    if "=" in text:
        text = _ASSIGNED.sub(_assigned, text)
    if ":" in text:
        text = _KEYED.sub(_keyed, text)
    return _KEY.sub(_key, text)


def printable(text: str, replacement: str | None = None) -> str:
    r"""``text`` with every non-printable character escaped, or replaced.

    Args:
        text: What to show.
        replacement: None to escape each character as ``repr`` does (``\n``,
            ``\x1b``, ``\u202e``); otherwise the string to put in its place (a
            space, for drawings).
    """
    if text.isprintable():
        return text
    if replacement is None:
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return "".join(c if c.isprintable() else replacement for c in text)


_MARGIN = 256  # characters past a cut that are still redacted: a key started before it


def shown_text(text: str, limit: int | None = None, replacement: str | None = None) -> str:
    """A string as displays show it: redacted, printable, at most ``limit`` characters.

    Args:
        text: The text (a name, a location, an error message, a repr).
        limit: Characters shown at most (a cut ends in ``...``); None for all.
        replacement: What stands for a non-printable character (see :func:`printable`).
    """
    if limit is None:
        return printable(redact_text(text), replacement)
    cut = len(text) > limit + _MARGIN
    text = printable(redact_text(text[: limit + _MARGIN]), replacement)
    if cut or len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    return text


def shown_arguments(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int | None = None
) -> str:
    """A call's arguments as displays show them: ``'a', 2, api_key=<redacted>``.

    Args:
        args: Positional arguments.
        kwargs: Keyword arguments; secret names show :data:`REDACTED`.
        limit: Characters shown at most of each argument.
    """
    parts = [shown(a, limit) for a in args]
    for name, value in kwargs.items():
        text = REDACTED_TEXT if _hidden(name, value) else shown(value, limit)
        shown_name = name if name.isidentifier() else shown_text(str(name))
        parts.append(f"{shown_name}={text}")
    return ", ".join(parts)


def shown(value: Any, limit: int | None = None) -> str:
    """The ``repr`` of ``value`` as displays show it (see :func:`shown_text`).

    A ``repr`` that raises is shown as ``<TypeName>``.
    """
    try:
        text = repr(redact(value))
    except Exception:
        text = f"<{type(value).__name__}>"
    return shown_text(text, limit)
