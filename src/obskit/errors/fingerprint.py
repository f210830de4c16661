"""Fingerprints: which captured errors are "the same error", in-process, as Sentry groups them.

Sentry's server groups an exception event by its chained exceptions, each contributing its type
and the *in-app* frames of its stack trace; a frame contributes its module (or file name),
function and source context line, never its line number; consecutive recursive frames count
once; when no frame is in-app, every frame is used; an event without a stack trace is grouped by
its message with the variable parts (numbers, ids, ...) stripped. obskit does the same, with two
improvements:

* the context line is the whole *statement* at the crash site, reduced to its tokens (see
  :func:`normalise_source`), so re-formatting a line (whitespace, quote style, trailing commas,
  a call split over several lines) keeps the fingerprint; Sentry compares the raw line with
  whitespace collapsed and splits issues there (sentry-python#693);
* recursion is collapsed for cycles of up to four frames (``a -> b -> a -> b``), not only for a
  function calling itself.

A custom fingerprint (a list of strings) replaces the default; the item ``"{{ default }}"``
stands for the default fingerprint, so ``["{{ default }}", tenant]`` splits a group per tenant.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import re
import tokenize
from collections.abc import Iterable, Sequence

__all__ = [
    "DEFAULT",
    "collapse_recursion",
    "fingerprint_for",
    "hash_parts",
    "normalise_source",
    "parameterise_message",
    "with_custom",
]

#: The placeholder for the default fingerprint inside a custom one.
DEFAULT = "{{ default }}"

_SKIPPED_TOKENS = frozenset(
    tokenize.tok_name.get(number, "")
    for number in (
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENCODING,
        tokenize.ENDMARKER,
    )
)
_CLOSING = frozenset({")", "]", "}"})
_STRING_PREFIX = re.compile(r"^[A-Za-z]*")


def normalise_source(text: str) -> str:
    """The tokens of a statement joined by single spaces, formatting differences removed.

    Whitespace, line breaks, comments, the quote style of string literals and trailing commas
    do not change the result; anything that changes the code does.

    >>> normalise_source("raise  ValueError('bad amount %s' % raw ,)  # why")
    'raise ValueError ( "bad amount %s" % raw )'
    >>> normalise_source('raise ValueError(\\n    "bad amount %s" % raw,\\n)\\n')
    'raise ValueError ( "bad amount %s" % raw )'
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text.strip() + "\n").readline))
    except (tokenize.TokenError, SyntaxError, ValueError):
        return " ".join(text.split())
    kept: list[str] = []
    for token in tokens:
        kind = tokenize.tok_name.get(token.type, "")
        if kind in _SKIPPED_TOKENS:
            continue
        value = token.string
        if kind == "STRING":
            value = _normalise_string(value)
        elif kind in ("FSTRING_START", "FSTRING_END"):  # Python 3.12+
            value = value.replace("'", '"')
        elif value in _CLOSING and kept and kept[-1] == ",":
            kept.pop()  # a trailing comma is formatting, not code
        kept.append(value)
    return " ".join(kept)


def _normalise_string(literal: str) -> str:
    prefix = _STRING_PREFIX.match(literal)
    letters = prefix.group(0).lower() if prefix else ""
    if "f" not in letters:
        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = None
        if isinstance(value, str):
            return json.dumps(value)
        if isinstance(value, bytes):
            return "b" + json.dumps(value.decode("latin-1"))
    body = literal[len(letters) :]
    quote = 3 if body[:3] in ('"""', "'''") else 1
    return f'{letters}"{body[quote:-quote]}"'


# Words that look like prefixed ids but name a thing (an encoding, a hash, a type).
_NOT_IDS = (
    r"(?i:utf[-_]?(?:8|16|32)|latin[-_]?1|iso[-_]?8859|cp\d+|sha\d+|md5|base(?:16|32|64|85)"
    r"|u?int\d+|float\d+|complex\d+|http[-_]?[123]|ipv[46]|x86|x64|arm64|aarch64|py\d+|python\d)"
)
_UNITS = (
    r"ns|us|µs|ms|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|d|days?"
    r"|[kKMGTP]i?B|bytes?|B|[kKMG]bps|Hz|[kKMG]Hz|%"
)
# Variable parts of messages, most specific first (after Sentry's parameterisation, plus paths,
# ids (prefixed, or bare hex), and quantities with units, which Sentry leaves in and so splits
# issues on).
_PARAMETERS = re.compile(
    r"""(?x)
    (?P<timestamp>
        \d{4}-\d{2}-\d{2}[T\x20]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?
      | \b\d{4}-\d{2}-\d{2}\b
      | \b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b
    )
  | (?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
  | (?P<email>[\w.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)
  | (?P<url>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'"]+)
  | (?P<path>
        (?<![\w/.~-])(?:~|\.{1,2})?(?:/[\w.@%+~-]+)+/?
      | \b[A-Za-z]:\\[^\s'"<>|*?]*
      | \b[\w.-]+(?:/[\w.@%+~-]+)+\.[A-Za-z0-9]{1,8}\b
    )
  | (?P<ip>
        \b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b
      | (?<![\w:])(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])
      | (?<![\w:])(?:[0-9a-fA-F]{0,4}:){1,6}:[0-9a-fA-F]{1,4}(?![\w:])
    )
  | (?P<hex>\b0[xX][0-9a-fA-F]+\b)
  | (?P<quoted>'[^'\n]*' | "[^"\n]*" | `[^`\n]*`)
  | (?P<quantity>(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\x20?(?:UNITS)(?![\w%]))
  | (?P<id>
        \b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b
      | \b(?!NOT_IDS\b)[A-Za-z]+(?:[-_:#]\d+|\d{2,})\b
    )
  | (?P<float>(?<![\w.])-?\d+\.\d+(?:[eE][+-]?\d+)?(?![\d.]))
  | (?P<int>(?<![\w.])-?\d+(?![\d.]))
    """.replace("UNITS", _UNITS).replace("NOT_IDS", _NOT_IDS)
)


def parameterise_message(message: str) -> str:
    """The message with its variable parts replaced by placeholders (first two lines).

    >>> parameterise_message("user 42 not found at 10.0.0.7 (id 'u-9', 0x7f3a)")
    'user <int> not found at <ip> (id <quoted>, <hex>)'
    >>> parameterise_message("timeout after 2.5s on 2024-05-01T10:00:00Z")
    'timeout after <quantity> on <timestamp>'
    >>> parameterise_message("cannot read /var/data/u123/file-9.csv for s-123 (user u77)")
    'cannot read <path> for <id> (user <id>)'
    """
    # Lines end at "\n" only: a "\r" or form feed inside a quoted value is part of the value.
    lines = [line for line in message.replace("\r\n", "\n").split("\n") if line.strip()]
    text = "\n".join(lines[:2]) + ("..." if len(lines) > 2 else "")
    return _PARAMETERS.sub(_placeholder, text)


def _placeholder(match: re.Match[str]) -> str:
    return f"<{match.lastgroup}>"


def collapse_recursion(keys: Sequence[str], max_period: int = 4) -> list[str]:
    """``keys`` with repeated cycles of up to ``max_period`` consecutive items kept once.

    >>> collapse_recursion(["main", "walk", "walk", "walk", "fail"])
    ['main', 'walk', 'fail']
    >>> collapse_recursion(["main", "even", "odd", "even", "odd", "even", "odd", "fail"])
    ['main', 'even', 'odd', 'fail']
    """
    out: list[str] = []
    for key in keys:
        out.append(key)
        for period in range(1, max_period + 1):
            if len(out) >= 2 * period and out[-period:] == out[-2 * period : -period]:
                del out[-period:]
                break
    return out


def hash_parts(parts: Iterable[str]) -> str:
    """A 32-character hex digest of ``parts`` (order matters)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
    return digest.hexdigest()


def fingerprint_for(default_parts: Iterable[str], custom: Sequence[str] | str | None = None) -> str:
    """The fingerprint: the hash of the default grouping parts, or of a custom fingerprint.

    In a custom fingerprint, ``"{{ default }}"`` stands for the default fingerprint.

    >>> parts = ["ValueError", "app.orders|charge|raise ValueError ( )"]
    >>> len(fingerprint_for(parts))
    32
    >>> fingerprint_for(parts, ["{{ default }}"]) == fingerprint_for(parts)
    True
    >>> fingerprint_for(parts, ["{{ default }}", "eu"]) == fingerprint_for(parts)
    False
    >>> fingerprint_for(["x"], ["checkout-timeout"]) == fingerprint_for(["y"], ["checkout-timeout"])
    True
    """
    return with_custom(hash_parts(default_parts), custom)


def with_custom(default: str, custom: Sequence[str] | str | None) -> str:
    """``default``, or the custom fingerprint (``"{{ default }}"`` standing for ``default``)."""
    if custom is None:
        return default
    if isinstance(custom, str):
        custom = [custom]
    if list(custom) == [DEFAULT]:
        return default
    return hash_parts(default if item == DEFAULT else str(item) for item in custom)
