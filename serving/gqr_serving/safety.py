"""Output safety: what no generated query may carry, for the gateway and for DPO pair building.

Built-in detectors (each one a reason code, each one on unless left out of ``pii``):

- ``url``: ``http(s)://`` and ``www.`` addresses, and bare domains under common generic and
  country TLDs (``example.com``, ``bbc.co.uk``); TLDs that read as file extensions or words
  (``.py``, ``.md``, ``.sh``, ``.in``, ``.it``, ...) and ``asp.net``-style product names are
  not domains here.
- ``email``: ``name@domain.tld`` (Unicode letters included).
- ``phone``: ``+`` international numbers (8 to 15 digits, any grouping), and national ones:
  grouped (``(415) 555-0100``, ``415.555.0100``, ``020 7946 0958``, ``06 12 34 56 78``,
  ``555-0100``) or 10-11 digits with a leading trunk 0 (``0612345678``). Years, ``iphone 15``,
  ``top 10``, dates, IP addresses, ISBNs and thousands-grouped amounts are not phones.
- ``card``: 13 to 19 digits (spaces or dashes between) starting 2-6 and passing the Luhn check.
- ``iban``: a country code, two check digits and 11 to 30 letters/digits passing ISO 13616's
  mod-97 check.

A user blocklist (:func:`load_blocklist`, YAML or JSON) adds ``terms`` (``blocklist_term``:
whole words or phrases, case-insensitive after NFKC and case folding; a term in a script
written without spaces, such as Chinese or Thai, matches anywhere) and ``regexes``
(``blocklist_regex``: Python ``re``, case-insensitive, searched anywhere in the text).

Pure Python (``re``, ``unicodedata``, ``yaml``): the gateway and the trainer import it alike.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PII_KINDS: tuple[str, ...] = ("url", "email", "phone", "card", "iban")
"""The built-in detectors, in the order they are tried (the first hit names the reason)."""
BLOCKLIST_REASONS: tuple[str, ...] = ("blocklist_term", "blocklist_regex")
REASONS: tuple[str, ...] = (*PII_KINDS, *BLOCKLIST_REASONS)
"""Every reason code a filtered text can get."""
BLOCKLIST_KEYS = ("terms", "regexes")


class SafetyError(ValueError):
    """A PII filter list or a blocklist file is invalid; the message says where and why."""


# -- PII filter selection -----------------------------------------------------------------


def parse_pii(value: str | Iterable[str]) -> frozenset[str]:
    """``"all"`` (every detector), ``"none"``, or a comma list such as ``"url,email"`` (or the
    names as a list; an empty list is none). :class:`SafetyError` names a value that is none
    of :data:`PII_KINDS`."""
    raw = value.split(",") if isinstance(value, str) else list(value)
    names = [x.strip().lower() for x in raw if x.strip()]
    accepted = f"accepted: all, none, or a comma list of {', '.join(PII_KINDS)}"
    if names == ["all"]:
        return frozenset(PII_KINDS)
    if names == ["none"]:
        return frozenset()
    if not names and isinstance(value, str):
        raise SafetyError(f"empty PII filter list ({accepted})")
    for n in names:
        if n not in PII_KINDS:
            raise SafetyError(f"unknown PII filter {n!r} ({accepted})")
    return frozenset(names)


# -- built-in detectors -------------------------------------------------------------------

_TLDS = (
    "com|net|org|info|biz|edu|gov|mil|int|io|co|ai|app|dev|xyz|online|site|shop|store|top|club|"
    "live|link|click|vip|win|bet|casino|porn|sex|xxx|me|tv|ly|gg|cc|ws|pw|tk|ml|ga|cf|gq|su|"
    "ru|cn|uk|de|fr|nl|eu|jp|br|au|ca|es|ch|se|dk|fi|kr|vn|ir|tr|ua|cz|gr|hu|ro|ar|mx|za|nz|"
    "ie|pt|sk|kz|by|lt|lv|ee|hk|tw|sg|my|id|ph|th|cl|pe|ve|ng|ke|eg|sa|ae|il|pk|bd"
)
_HOST_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_URL = re.compile(
    r"(?:https?://|\bwww\.)\S+"
    rf"|(?<![\w@.-])(?:{_HOST_LABEL}\.)+(?:{_TLDS})(?![\w-]|\.[^\W\d_])(?:[/:?#]\S*)?",
    re.IGNORECASE,
)
_NOT_DOMAINS = frozenset({"asp.net", "ado.net", "vb.net", "dot.net"})
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[^\W_](?:[\w-]*[^\W_])?(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_GROUP = r"(?:\(\d{1,5}\) ?)?\d+"
_PHONE = re.compile(rf"(?<![\w+@.,/-])(\+ ?)?({_GROUP}(?:[ .-]{_GROUP})*)(?![\w@]|[.,/-]\d)")
_CARD = re.compile(r"(?<![\w.,-])[2-6](?:[ -]?\d){12,18}(?![\w]|[.,-]\d)")
_IBAN = re.compile(r"(?<![\w])([a-z]{2}\d{2}(?: ?[a-z0-9]{2,4}){3,8})(?!\w)", re.IGNORECASE)
_YEAR = re.compile(r"(?:19|20)\d\d")


def _url(text: str) -> bool:
    return any(m.group(0).lower().rstrip(".,;") not in _NOT_DOMAINS for m in _URL.finditer(text))


def _phone_shaped(plus: bool, groups: Sequence[str], seps: str) -> bool:
    """Whether digit groups (and the separators between them) look like a phone number."""
    digits = "".join(groups)
    n = len(digits)
    if plus or (digits.startswith("00") and len(groups) > 1):  # +44 ..., 0044 ...
        return 8 <= len(digits.removeprefix("00") if not plus else digits) <= 15
    if len(groups) == 1:  # one run: a national number with its trunk 0
        return digits.startswith("0") and not digits.startswith("00") and 10 <= n <= 11
    if any(len(g) < 2 for g in groups[1:]):  # ISBN-10 check digit, 1 2 3 lists, ...
        return False
    if all(_YEAR.fullmatch(g) for g in groups):  # 2023 2024 2025
        return False
    if seps == "." * len(seps) and len(groups) == 4 and all(len(g) <= 3 for g in groups):
        return False  # an IPv4 address
    thousands = all(len(g) == 3 for g in groups[1:]) and len(groups[0]) <= 3
    if thousands and (len(groups[0]) == 1 or "000" in groups[1:]):
        return False  # 1 000 000 000, 2.500.000
    if n == 7 and len(groups) == 2 and seps == "-":
        return len(groups[0]) == 3  # 555-0100
    return 9 <= n <= 12


def _phone(text: str) -> bool:
    for m in _PHONE.finditer(text):
        body = m.group(2)
        groups = re.findall(r"\d+", body)
        seps = "".join(re.findall(r"(?<=[\d)])[ .-](?=[\d(])", body))
        if _phone_shaped(m.group(1) is not None, groups, seps):
            return True
    return False


def luhn(digits: str) -> bool:
    """The Luhn checksum of payment card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(text: str) -> bool:
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and luhn(digits):
            return True
    return False


def iban_valid(text: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN (spaces ignored, any case)."""
    s = text.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    moved = s[4:] + s[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _iban(text: str) -> bool:
    return any(iban_valid(m.group(1)) for m in _IBAN.finditer(text))


_DETECTORS = {
    "email": lambda t: _EMAIL.search(t) is not None,
    "url": _url,
    "card": _card,
    "iban": _iban,
    "phone": _phone,
}
_ORDER = ("email", "url", "card", "iban", "phone")  # an e-mail's domain is no URL, a card no phone


# -- blocklist ----------------------------------------------------------------------------

# Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, kana, CJK): a term
# holding one matches anywhere in the text.
_NO_SPACES = re.compile(
    r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    r"\uf900-\ufaff]"
)
# A word: letters, digits and the combining marks inside words (Latin diacritics, Hebrew and
# Arabic points, the Indic scripts' vowel signs), so a word is never cut at a mark.
_TOKEN = re.compile(
    r"(?:\w|[\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f"
    r"\u0900-\u0dff])+|[^\w\s]"
)


def fold(text: str) -> str:
    """What blocklist terms are compared on: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def tokens(text: str) -> tuple[str, ...]:
    """The folded words and punctuation marks of ``text``: a term matches a run of them."""
    return tuple(_TOKEN.findall(fold(text)))


@dataclass(frozen=True)
class Blocklist:
    """A user blocklist: ``terms`` (whole words/phrases) and ``regexes``, compiled.

    A term is looked up as a run of words (a set lookup per word position and term length),
    so a long list of terms costs about as little as a short one."""

    terms: tuple[str, ...] = ()
    regexes: tuple[str, ...] = ()
    source: str = "<blocklist>"
    _phrases: frozenset[tuple[str, ...]] = field(
        init=False, repr=False, compare=False, default=frozenset()
    )
    _lengths: tuple[int, ...] = field(init=False, repr=False, compare=False, default=())
    _substrings: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())
    _regexes: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        spaced = [t for t in self.terms if not _NO_SPACES.search(t)]
        phrases = frozenset(tokens(t) for t in spaced) - {()}
        object.__setattr__(self, "_phrases", phrases)
        object.__setattr__(self, "_lengths", tuple(sorted({len(p) for p in phrases})))
        unspaced = tuple(fold(t) for t in self.terms if _NO_SPACES.search(t))
        object.__setattr__(self, "_substrings", unspaced)
        compiled = []
        for i, rx in enumerate(self.regexes):
            try:
                compiled.append(re.compile(rx, re.IGNORECASE))
            except re.error as exc:
                raise SafetyError(
                    f"{self.source}: regexes[{i}] {rx!r} is not a valid regular expression: {exc}"
                ) from None
        object.__setattr__(self, "_regexes", tuple(compiled))

    def _has_term(self, text: str) -> bool:
        if self._substrings:
            folded = fold(text)
            if any(t in folded for t in self._substrings):
                return True
        if not self._phrases:
            return False
        words = tokens(text)
        phrases = self._phrases
        for n in self._lengths:
            if any(words[i : i + n] in phrases for i in range(len(words) - n + 1)):
                return True
        return False

    def match(self, text: str) -> str | None:
        """``blocklist_term``, ``blocklist_regex`` or None."""
        if self._has_term(text):
            return "blocklist_term"
        if any(rx.search(text) for rx in self._regexes):
            return "blocklist_regex"
        return None


def _entries(data: Mapping[str, Any], key: str, source: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise SafetyError(f"{source}: {key} must be a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise SafetyError(f"{source}: {key}[{i}] = {item!r}: expected a non-empty string")
    return tuple(value)


def parse_blocklist(text: str, source: str = "<blocklist>") -> Blocklist:
    """A blocklist from JSON or YAML text: a mapping with ``terms`` and/or ``regexes``
    (lists of strings). :class:`SafetyError` names ``source``, the entry and what is wrong."""
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SafetyError(f"{source}: not valid JSON/YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SafetyError(
            f"{source}: expected a mapping with 'terms' and/or 'regexes', got {type(data).__name__}"
        )
    unknown = sorted(str(k) for k in data if k not in BLOCKLIST_KEYS)
    if unknown:
        raise SafetyError(f"{source}: unknown key {unknown[0]!r} (accepted: terms, regexes)")
    return Blocklist(
        _entries(data, "terms", source), _entries(data, "regexes", source), source=source
    )


def load_blocklist(path: str | Path) -> Blocklist:
    """:func:`parse_blocklist` of a file; an unreadable file is a :class:`SafetyError` too."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SafetyError(f"{path}: cannot read the blocklist file: {exc}") from None
    return parse_blocklist(text, str(path))


# -- the filter ---------------------------------------------------------------------------


class OutputFilter:
    """The built-in detectors in ``pii`` (default: all) plus an optional :class:`Blocklist`."""

    def __init__(
        self, pii: Iterable[str] | str = PII_KINDS, blocklist: Blocklist | None = None
    ) -> None:
        self.pii = parse_pii(pii)
        self.blocklist = blocklist
        self._detectors = [(k, _DETECTORS[k]) for k in _ORDER if k in self.pii]

    @property
    def active(self) -> bool:
        return bool(self._detectors) or self.blocklist is not None

    def reason(self, text: str) -> str | None:
        """The first reason code ``text`` is refused for, or None when it may be shown."""
        for kind, detect in self._detectors:
            if detect(text):
                return kind
        return self.blocklist.match(text) if self.blocklist is not None else None

    def first_reason(self, texts: Iterable[str]) -> str | None:
        """The first reason any of ``texts`` (one response's queries) is refused for."""
        for t in texts:
            if (r := self.reason(t)) is not None:
                return r
        return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OutputFilter):
            return NotImplemented
        return (self.pii, self.blocklist) == (other.pii, other.blocklist)

    def __hash__(self) -> int:
        return hash((self.pii, self.blocklist))

    def __repr__(self) -> str:
        source = self.blocklist.source if self.blocklist is not None else None
        return f"OutputFilter(pii={sorted(self.pii)}, blocklist={source!r})"


def output_filter(pii: str = "all", blocklist_file: str | Path | None = None) -> OutputFilter:
    """The filter a ``--pii-filters`` value and a ``--blocklist-file`` describe."""
    blocklist = load_blocklist(blocklist_file) if blocklist_file is not None else None
    return OutputFilter(pii, blocklist)
