"""Scrubbing and sanitising: the one place secrets, PII and unserialisable values are handled.

The pipeline calls ``signal.scrub(scrubber)`` once per signal, on the emitting thread, before
any exporter sees it. One walk does both jobs:

* **sanitise** - whatever the app logged becomes JSON-safe: NaN and infinities become strings,
  bytes are decoded, cycles and over-deep nesting are cut with a marker, huge strings and
  containers are truncated with a marker, objects are ``repr``-ed (a broken ``__repr__`` gives
  ``<unrepresentable X>``). Nothing here ever raises.
* **scrub** - values under a denied key (``password``, ``token``, ``authorization``, ...,
  matched case-insensitively as a substring of the normalised key, at any depth) become
  ``[Filtered]``; inside every string, bearer tokens, credentials in URLs, ``key=value``
  secrets, JWTs, AWS key ids, private-key blocks, card numbers that pass the Luhn check and
  (unless ``send_default_pii``) e-mail addresses are replaced.

Unlike sentry-sdk's default scrubber, the walk is recursive into nested dicts, lists and tuples.

Two things keep it cheap on hot paths. A string is only searched with the full pattern when a
quick, conservative pre-check finds something secret-shaped in it (a trigger word, ``@``, a long
digit run, ...), which most strings do not have. And :meth:`Scrubber.freeze` returns read-only
:class:`ScrubbedMapping` / :class:`ScrubbedSequence` values that the walk passes through untouched
when it meets them again, so data cleaned once (a cached stack frame, a breadcrumb) is not
cleaned again for every event that carries it.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "DEFAULT_DENY_KEYS",
    "FILTERED",
    "SHORT_DENY_KEYS",
    "ScrubbedMapping",
    "ScrubbedSequence",
    "Scrubber",
    "encodable",
    "safe_repr",
]

FILTERED = "[Filtered]"

#: Key fragments whose values are always filtered (normalised: lower case, ``-`` -> ``_``).
DEFAULT_DENY_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "auth",
    "cookie",
    "session",
    "csrf",
    "xsrf",
    "private_key",
    "credit_card",
    "creditcard",
    "card_number",
    "cardnumber",
    "cvv",
    "cvc",
    "ssn",
    "signature",
    "passphrase",
    "credential",
    "jwt",
    "subscription_key",
    "functions_key",
    "private",
)

#: Short names filtered only as the whole (normalised) key: as fragments they are everywhere.
SHORT_DENY_KEYS: frozenset[str] = frozenset({"key", "sig", "pw", "pass", "pin", "otp"})

_SECRET_WORDS = (
    r"password|passwd|pwd|secret|token|api[_.-]?key|access[_-]?key|private[_-]?key|"
    r"client[_-]?secret|authorization|auth|session|cookie|csrf|xsrf|credit[_ -]?card|"
    r"card[_-]?number|cvv|cvc|ssn|signature|passphrase|credentials?|jwt|"
    r"subscription[_-]?key|functions[_-]?key"
)
# Well-known token formats, found anywhere in text (GitHub, GitLab, Stripe, Slack, Google).
_TOKEN_FORMATS = (
    r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}|ya29\.[0-9A-Za-z_-]{20,}"
)
_VALUE_PATTERN = re.compile(
    r"(?P<pem>-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$))"
    r"|(?P<bearer>\b(?:[Bb]earer|[Bb]asic|[Tt]oken)\s+)[A-Za-z0-9\-._~+/]{8,}=*"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+)"
    # (a user name may be empty: redis://:password@host)
    r"|(?P<urlcred>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^/\s@]+(?=@)"
    # short parameter names, only inside a query string (?key=, &sig=, &pw=, &pass=)
    r"|(?P<query>[?&;](?i:key|sig|pw|pass|code_verifier)=)[^&#\s\"']+"
    r"|(?P<hook>hooks\.slack\.com/services/)[A-Za-z0-9/_-]+"
    r"|(?P<token>\b(?:" + _TOKEN_FORMATS + r")\b)"
    # (the look-ahead skips quickly past words no "=" or ":" follows; a key has at most one
    # space, as in "credit card")
    r"|(?P<kv>(?i:\b(?=[\w.-]*(?:\x20[\w.-]+)?[\"']?\s*[=:])[\w.-]*(?:" + _SECRET_WORDS + r")"
    r"[\w.-]*)"
    r"[\"']?\s*[=:]\s*)"
    # the value: quoted (spaces and all), or a word (after an optional quote or auth scheme)
    r"(?:\"(?P<kv_dq>[^\"\n]*)\"|'(?P<kv_sq>[^'\n]*)'"
    r"|(?P<kv_q>[\"'])?(?:(?:[Bb]earer|[Bb]asic|[Tt]oken|[Dd]igest)\s+)?"
    r"(?![\s,;&]|\[Filtered\])[^\s,;&\"']+)"
    # a (name, value) pair as repr() writes it: ('X-Api-Key', 'abc'), ("password", "abc")
    r"|(?P<pair>(?i:(?P<pq>['\"])[\w.-]*(?:" + _SECRET_WORDS + r")[\w.-]*(?P=pq)\s*,\s*))"
    r"(?P<pv>['\"])[^'\"\n]*(?P=pv)"
    r"|(?P<aws>\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b)"
    r"|(?P<card>\b\d(?:[ -]?\d){12,18}\b)"
    r"|(?P<email>\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b)",
    re.DOTALL,
)

# The pre-check. Every _VALUE_PATTERN match in ASCII text needs one of these (lower-cased):
# a fragment only the pattern's other alternatives can start with ...
_TRIGGERS = (
    "@", "://", "-----", "eyj", "akia", "asia", "agpa", "aida", "aroa", "anpa",
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "k_live_", "k_test_",
    "xox", "aiza", "ya29.", "hooks.slack",
)  # fmt: skip
# ... a key holding one of these right before a "=" or ":" (the key=value alternative) ...
_KEY_WORDS = (
    "pass", "pwd", "secret", "token", "key", "auth", "session", "cookie",
    "csrf", "xsrf", "card", "cvv", "cvc", "ssn", "signature", "cred", "jwt",
)  # fmt: skip
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
# ... an auth scheme followed by a token, or a long run of digits (a card number).
_SCHEME_TOKEN = re.compile(r"(?:bearer|basic|token)\s+[a-z0-9\-._~+/]{8}")
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){12}")
# Faster ways to say no (one regex for the fragments instead of a scan per fragment; 13
# digits, spaces or dashes in a row, which every _DIGIT_RUN match is, before searching for it):
# most strings (paths, ids, messages) have neither.
_TRIGGER = re.compile("|".join(re.escape(trigger) for trigger in _TRIGGERS))
_DIGITISH_RUN = re.compile(r"[\d -]{13}")
_QUERY_SHORT = re.compile(r"[?&;](?:key|sig|pw|pass|code_verifier)=")
# Secrets straddling the truncation point are searched in this much extra text first.
_SCAN_MARGIN = 1024
# Strings up to this length are remembered, up to this many.
_CACHEABLE = 256
_CACHE_SIZE = 4096


def _may_hold_secret(text: str) -> bool:
    """A cheap, conservative check: ``False`` only if ``_VALUE_PATTERN`` cannot match."""
    if not text.isascii():  # case-insensitive matching folds some non-ASCII letters
        return True
    low = text.lower()
    if _TRIGGER.search(low) is not None:
        return True
    if ("=" in text or ":" in text) and _secret_key_before_separator(low):
        return True
    if ("bearer" in low or "basic" in low or "token" in low) and _SCHEME_TOKEN.search(low):
        return True
    if ("?" in text or "&" in text or ";" in text) and _QUERY_SHORT.search(low):
        return True
    if ("'," in text or '",' in text) and any(word in low for word in _KEY_WORDS):
        return True
    return _DIGITISH_RUN.search(text) is not None and _DIGIT_RUN.search(text) is not None


def _secret_key_before_separator(low: str) -> bool:
    """Whether a key containing a secret word comes right before some "=" or ":"."""
    for separator in "=:":
        index = low.find(separator)
        while index != -1:
            end = len(low[:index].rstrip(" \t\n\r\f\v\"'"))
            start = end
            while start and low[start - 1] in _KEY_CHARS:
                start -= 1
            # a key may hold one space ("credit card"): look one word further back
            key = low[max(0, start - 12) : end]
            if any(word in key for word in _KEY_WORDS):
                return True
            index = low.find(separator, index + 1)
    return False


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = ord(char) - 48
        if index % 2:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


def safe_repr(value: object, limit: int = 1024) -> str:
    """``repr(value)`` truncated to ``limit``; never raises, even if ``__repr__`` does."""
    try:
        text = repr(value)
    except Exception:
        try:
            return f"<unrepresentable {type(value).__qualname__}>"
        except Exception:
            return "<unrepresentable>"
    if not isinstance(text, str):
        return "<unrepresentable>"
    return text if len(text) <= limit else _truncate(text, limit)


def _truncate(text: str, limit: int) -> str:
    return f"{text[:limit]}...[truncated {len(text) - limit} chars]"


class ScrubbedMapping(dict):  # type: ignore[type-arg]
    """A read-only dict that ``scrubber`` already cleaned; its walk passes it through as is.

    Made by :meth:`Scrubber.freeze`. Shared between events, so it refuses changes: copy it
    with ``dict(mapping)`` to edit (the copy is scrubbed again when emitted).
    """

    __slots__ = ("scrubber",)

    def __init__(self, items: Any = (), scrubber: Scrubber | None = None) -> None:
        dict.__init__(self, items)
        self.scrubber = scrubber

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("scrubbed data is shared and read-only; copy it with dict(...) to edit")

    __setitem__ = __delitem__ = _read_only
    clear = pop = popitem = setdefault = update = __ior__ = _read_only  # type: ignore[assignment]

    def __reduce__(self) -> Any:  # copies and pickles are plain dicts
        return (dict, (dict(self),))

    def __deepcopy__(self, memo: Any) -> dict[Any, Any]:
        import copy

        return {key: copy.deepcopy(value, memo) for key, value in self.items()}


class ScrubbedSequence(tuple):  # type: ignore[type-arg]
    """A tuple that ``scrubber`` already cleaned (see :class:`ScrubbedMapping`)."""

    scrubber: Scrubber | None = None

    def __reduce__(self) -> Any:
        return (tuple, (tuple(self),))


class Scrubber:
    """Sanitises values to JSON-safe data and filters secrets and PII in one recursive walk.

    >>> s = Scrubber()
    >>> s.clean_mapping({"user": "ann", "headers": {"Authorization": "Bearer abc.def"}})
    {'user': 'ann', 'headers': {'Authorization': '[Filtered]'}}
    >>> s.clean_text("retry with password=hunter2 and card 4111 1111 1111 1111")
    'retry with password=[Filtered] and card [Filtered]'
    >>> s.clean_value({"n": float("nan"), "b": b"raw", "t": (1, 2)})
    {'n': 'NaN', 'b': 'raw', 't': [1, 2]}
    """

    __slots__ = (
        "_allow",
        "_deny",
        "_key_cache",
        "enabled",
        "max_depth",
        "max_items",
        "max_string_length",
        "send_default_pii",
        "text_cache",
    )

    def __init__(
        self,
        *,
        scrub: bool = True,
        deny_keys: Iterable[str] = DEFAULT_DENY_KEYS,
        scrub_keys: Iterable[str] = (),
        scrub_allow_keys: Iterable[str] = (),
        send_default_pii: bool = False,
        max_string_length: int = 8192,
        max_depth: int = 12,
        max_items: int = 1000,
    ) -> None:
        self.enabled = scrub
        self._deny = tuple(_normalise_key(k) for k in (*deny_keys, *scrub_keys))
        self._allow = frozenset(_normalise_key(k) for k in scrub_allow_keys)
        self.send_default_pii = send_default_pii
        self.max_string_length = max_string_length
        self.max_depth = max_depth
        self.max_items = max_items
        self._key_cache: dict[str, bool] = {}
        #: Short strings already cleaned -> their clean text. Hot paths look a string up here
        #: before calling :meth:`clean_text` (a hit is exactly what it would return).
        self.text_cache: dict[str, str] = {}

    # -- public entry points -------------------------------------------------------------

    def is_denied_key(self, key: str) -> bool:
        """Whether values under ``key`` are filtered (cached: keys repeat endlessly)."""
        denied = self._key_cache.get(key)
        if denied is None:
            norm = _normalise_key(key)
            denied = (
                self.enabled
                and norm not in self._allow
                and (norm in SHORT_DENY_KEYS or any(d in norm for d in self._deny))
            )
            if len(self._key_cache) < 10_000:
                self._key_cache[key] = denied
        return denied

    def clean_text(self, text: object) -> str:
        """A string with secret-looking substrings replaced, truncated to ``max_string_length``."""
        if type(text) is not str:
            text = _to_text(text, self.max_string_length + _SCAN_MARGIN)
        cached = self.text_cache.get(text)
        if cached is not None:
            return cached
        limit = self.max_string_length
        if len(text) > limit:
            # Scrub a little past the cut first, so no half of a secret survives the cut.
            window = text[: limit + _SCAN_MARGIN]
            if self.enabled:
                window = self._scrub_patterns(window)
            return f"{encodable(window[:limit])}...[truncated {len(text) - limit} chars]"
        clean = self._scrub_patterns(text) if self.enabled else text
        if not clean.isascii():
            clean = encodable(clean)
        if len(text) <= _CACHEABLE:  # messages and enum-like values repeat endlessly
            if len(self.text_cache) >= _CACHE_SIZE:
                self.text_cache.clear()
            self.text_cache[text] = clean
        return clean

    def _scrub_patterns(self, text: str) -> str:
        if _may_hold_secret(text) and _VALUE_PATTERN.search(text) is not None:
            text = _VALUE_PATTERN.sub(self._replace, text)
        if "%" in text:  # a secret URL-encoded inside another value (a redirect URL, say)
            decoded = _unquote(text)
            if decoded != text and _may_hold_secret(decoded):
                scrubbed = _VALUE_PATTERN.sub(self._replace, decoded)
                if scrubbed != decoded:
                    return self._scrub_patterns(scrubbed)  # decoded once more, if need be
        return text

    def trust(self, text: str) -> None:
        """Remember ``text`` as clean: a string obskit made itself (a hex request or trace id)
        that cannot hold a secret, so the records carrying it skip the search.

        >>> s = Scrubber()
        >>> s.trust("4bf92f3577b34da6a3ce929d0e0e4736")
        >>> s.clean_text("4bf92f3577b34da6a3ce929d0e0e4736")
        '4bf92f3577b34da6a3ce929d0e0e4736'
        """
        cache = self.text_cache
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[text] = text

    def clean_mapping(self, mapping: Mapping[Any, Any] | None) -> dict[str, Any]:
        """A JSON-safe, scrubbed copy of a mapping (the common case: a log call's fields)."""
        if not mapping:
            return {}
        if len(mapping) > self.max_items or type(mapping) is ScrubbedMapping:
            out = self._clean(mapping, 0, set())
            return out if isinstance(out, dict) else {"value": out}
        # The common case, a flat mapping of scalars, inlined: this runs on every log call.
        result: dict[str, Any] = {}
        denied_keys = self._key_cache
        texts = self.text_cache
        path: set[int] | None = None
        for key, value in mapping.items():
            if type(key) is not str:
                key = _to_text(key, 256)
            if not key.isascii():
                key = encodable(key)
            denied = denied_keys.get(key)
            if denied is None:
                denied = self.is_denied_key(key)
            kind = type(value)
            if denied and value is not None:
                result[key] = FILTERED
            elif kind is str:
                clean = texts.get(value)
                result[key] = self.clean_text(value) if clean is None else clean
            elif kind is int or kind is bool or value is None:
                result[key] = value
            else:
                if path is None:
                    path = {id(mapping)}
                result[key] = self._clean(value, 1, path)
        return result

    def clean_value(self, value: Any) -> Any:
        """A JSON-safe, scrubbed copy of any value."""
        return self._clean(value, 0, set())

    def freeze(self, value: Any) -> Any:
        """A scrubbed, read-only copy this scrubber will not clean again (for shared data).

        >>> s = Scrubber()
        >>> crumb = s.freeze({"message": "login", "data": {"token": "abc", "ids": [1, 2]}})
        >>> crumb
        {'message': 'login', 'data': {'token': '[Filtered]', 'ids': (1, 2)}}
        >>> s.clean_value(crumb) is crumb
        True
        """
        return self._freeze(self._clean(value, 0, set()))

    def _freeze(self, value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            return ScrubbedMapping({k: self._freeze(v) for k, v in value.items()}, self)
        if kind is list:
            frozen = ScrubbedSequence(self._freeze(item) for item in value)
            frozen.scrubber = self
            return frozen
        return value

    # -- the walk ------------------------------------------------------------------------

    def _clean(self, value: Any, depth: int, path: set[int]) -> Any:
        kind = type(value)
        if kind is str:
            return self.clean_text(value)
        if value is None or kind is bool or kind is int:
            return value
        if kind is float:
            return value if math.isfinite(value) else _float_name(value)
        if isinstance(value, Mapping):
            return self._clean_mapping(value, depth, path)
        if isinstance(value, (list, tuple, set, frozenset)):
            return self._clean_sequence(value, depth, path)
        return self._clean_scalar(value)

    def _clean_mapping(self, value: Mapping[Any, Any], depth: int, path: set[int]) -> Any:
        if type(value) is ScrubbedMapping and value.scrubber is self:
            return value
        if depth >= self.max_depth:
            return "[max depth]"
        marker = id(value)
        if marker in path:
            return "[cycle]"
        path.add(marker)
        out: dict[str, Any] = {}
        try:
            for index, (key, item) in enumerate(value.items()):
                if index >= self.max_items:
                    out["..."] = f"[{len(value) - index} more items]"
                    break
                name = key if type(key) is str else _to_text(key, 256)
                if not name.isascii():
                    name = encodable(name)
                if self.is_denied_key(name) and item is not None:
                    out[name] = FILTERED
                else:
                    out[name] = self._clean(item, depth + 1, path)
        except Exception:  # a mapping whose iteration raises
            out["..."] = "[unreadable mapping]"
        path.discard(marker)
        return out

    def _clean_sequence(self, value: Iterable[Any], depth: int, path: set[int]) -> Any:
        if type(value) is ScrubbedSequence and value.scrubber is self:
            return value
        if depth >= self.max_depth:
            return "[max depth]"
        marker = id(value)
        if marker in path:
            return "[cycle]"
        path.add(marker)
        out: list[Any] = []
        try:
            for index, item in enumerate(value):
                if index >= self.max_items:
                    out.append("[more items]")
                    break
                if type(item) in _PAIR_TYPES and len(item) == 2 and self._is_secret_pair(item):
                    out.append([self._clean(item[0], depth + 1, path), FILTERED])
                    continue
                out.append(self._clean(item, depth + 1, path))
        except Exception:
            out.append("[unreadable sequence]")
        path.discard(marker)
        return out

    def _is_secret_pair(self, pair: Any) -> bool:
        """Whether ``pair`` is a (name, value) pair naming a secret: ``("X-Api-Key", "...")``,
        ``(b"authorization", b"Bearer ...")`` (ASGI headers), a ``[name, value]`` list."""
        name, value = pair
        if value is None:
            return False
        if isinstance(name, (bytes, bytearray)):
            name = _decode(bytes(name))
        return type(name) is str and len(name) <= 64 and self.is_denied_key(name)

    def _clean_scalar(self, value: Any) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self.clean_text(_decode(bytes(value)))
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            number = float(value)
            return number if math.isfinite(number) else _float_name(number)
        if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
            return value.isoformat()
        if isinstance(value, BaseException):
            text = _to_text(value, self.max_string_length + _SCAN_MARGIN)
            return self.clean_text(f"{type(value).__name__}: {text}")
        if isinstance(value, str):  # str subclasses
            return self.clean_text(str.__str__(value))
        return self.clean_text(safe_repr(value, self.max_string_length + _SCAN_MARGIN))

    def _replace(self, match: re.Match[str]) -> str:
        group = match.lastgroup
        text = match.group(0)
        if group == "kv_dq" or group == "kv_sq":  # keep the quotes around the filtered value
            quote = '"' if group == "kv_dq" else "'"
            return f"{match.group('kv')}{quote}{FILTERED}{quote}"
        if group == "kv_q":  # an unterminated quoted value
            return f"{match.group('kv')}{match.group('kv_q')}{FILTERED}"
        if group == "pv":  # a repr()'d pair: keep the quotes
            quote = match.group("pv")
            return f"{match.group('pair')}{quote}{FILTERED}{quote}"
        if group in ("bearer", "urlcred", "kv", "query", "hook"):
            return f"{match.group(group)}{FILTERED}"
        if group == "card":
            digits = text.replace(" ", "").replace("-", "")
            return FILTERED if _luhn_ok(digits) else text
        if group == "email" and self.send_default_pii:
            return text
        return FILTERED


_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> str:
    """``text`` with lone surrogates (which no UTF-8 encoder takes) replaced by U+FFFD.

    ``surrogateescape`` decoding (file names, environment, ``sys.argv``) produces them.

    >>> encodable("caf\\udce9")
    'caf\ufffd'
    """
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


_PAIR_TYPES = (tuple, list)


def _normalise_key(key: str) -> str:
    return key.lower().replace("-", "_").replace(" ", "_").replace(".", "_")


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text, errors="replace")


def _float_name(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return safe_repr(raw)


def _to_text(value: object, limit: int) -> str:
    """``str(value)``, or a safe ``repr`` when ``__str__`` raises or returns a non-string."""
    try:
        text = str(value)
        if isinstance(text, str):
            return text if len(text) <= limit else _truncate(text, limit)
    except Exception:
        pass
    return safe_repr(value, limit)
