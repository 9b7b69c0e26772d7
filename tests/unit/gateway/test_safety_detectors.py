"""The output filter's detectors (gqr_serving.safety): what they catch, and the ordinary
queries they must leave alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from gqr_serving.safety import (
    PII_KINDS,
    OutputFilter,
    SafetyError,
    iban_valid,
    load_blocklist,
    luhn,
    parse_blocklist,
    parse_pii,
)

CAUGHT = [
    ("visit www.spam.com", "url"),
    ("https://x.io/a?b=c", "url"),
    ("http://localhost:8080", "url"),
    ("go to example.com now", "url"),
    ("EXAMPLE.COM deals", "url"),
    ("bbc.co.uk news", "url"),
    ("shop at amazon.de/angebote", "url"),
    ("mail me at a@b.org", "email"),
    ("josé.garcía@correo.es", "email"),
    ("first.last+tag@sub.example.co.uk", "email"),
    ("call +1 415 555 0100", "phone"),
    ("+14155550100", "phone"),
    ("+44 (0)20 7946 0958", "phone"),
    ("0044 20 7946 0958", "phone"),
    ("(415) 555-0100", "phone"),
    ("415-555-0100", "phone"),
    ("415.555.0100", "phone"),
    ("1-800-555-0100", "phone"),
    ("call 555-0100 today", "phone"),
    ("020 7946 0958", "phone"),
    ("06 12 34 56 78", "phone"),
    ("0612345678", "phone"),
    ("030 12345678", "phone"),
    ("4111 1111 1111 1111", "card"),
    ("card 4111-1111-1111-1111", "card"),
    ("5500000000000004", "card"),
    ("GB82 WEST 1234 5698 7654 32", "iban"),
    ("iban de89370400440532013000", "iban"),
]

LEFT_ALONE = [
    "2024",
    "iphone 15",
    "top 10",
    "top 10 movies of 2024",
    "best movies 2023 2024 2025",
    "2020-2024",
    "2024-01-15",
    "15.01.2024",
    "12/25/2024",
    "1920x1080",
    "1920 x 1080",
    "rtx 4090 vs 4080",
    "windows 10 21h2",
    "zip 94105",
    "3.14159",
    "python 3.12",
    "version 3.11.4",
    "192.168.100.100",
    "isbn 0-306-40615-2",
    "isbn 978-0-306-40615-7",
    "1 000 000 000",
    "2.500.000 euro",
    "boeing 737-800",
    "4111 1111 1111 1112",  # fails Luhn
    "gb82 west 1234 5698 7654 33",  # fails mod 97
    "asp.net core",
    "node.js tutorial",
    "readme.md",
    "script.py",
    "e.g. green tea",
    "U.S. history",
    "what is .com",
    "c++ vs c#",
    "tcp/ip",
    "usb 3.0 vs 3.1",
    "green tea benefits",
    "@home network",
    "covid 19 symptoms",
]


@pytest.mark.parametrize(("text", "reason"), CAUGHT)
def test_detectors_catch(text: str, reason: str) -> None:
    assert OutputFilter().reason(text) == reason


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_ordinary_queries_are_left_alone(text: str) -> None:
    assert OutputFilter().reason(text) is None


def test_only_the_chosen_detectors_run() -> None:
    f = OutputFilter("email,phone")
    assert f.reason("visit www.spam.com") is None
    assert f.reason("mail me at a@b.org") == "email"
    assert f.reason("4111 1111 1111 1111") is None
    assert not OutputFilter("none").active and OutputFilter([]).pii == frozenset()
    assert OutputFilter().pii == frozenset(PII_KINDS) == parse_pii("all")


@pytest.mark.parametrize("value", ["urls", "all,fax", "", " , "])
def test_bad_pii_value_names_it_and_the_accepted_ones(value: str) -> None:
    with pytest.raises(SafetyError, match="accepted: all, none, or a comma list of url, email"):
        parse_pii(value)


def test_checksums() -> None:
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82WEST123456987654")


def test_blocklist_terms_are_whole_words_case_and_unicode_insensitive() -> None:
    bl = parse_blocklist("terms: [idiot, 'dumb  people', Straße, 傻瓜, café]\n", "bl.yaml")
    f = OutputFilter("none", bl)
    for text in (
        "you IDIOT",
        "Dumb\tPeople here",
        "STRASSE guide",
        "你是傻瓜吗",
        "\uff29\uff44\uff49\uff4f\uff54",  # fullwidth IDIOT
        "CAFÉ",
    ):
        assert f.reason(text) == "blocklist_term", text
    for text in ("idiots", "idiotic", "dumb person", "cafés near me", "strassen"):
        assert f.reason(text) is None, text


def test_blocklist_regexes_are_case_insensitive_searches() -> None:
    bl = parse_blocklist('{"regexes": ["free\\\\s+money", "^buy "]}', "bl.json")
    f = OutputFilter("none", bl)
    assert f.reason("FREE   Money now") == "blocklist_regex"
    assert f.reason("Buy cheap pills") == "blocklist_regex"
    assert f.reason("where to buy tea") is None


def test_first_reason_of_a_list() -> None:
    f = OutputFilter()
    assert f.first_reason(["green tea", "mail a@b.org", "www.x.com"]) == "email"
    assert f.first_reason(["green tea", "matcha"]) is None


def test_bad_regex_names_the_file_the_entry_and_the_error(tmp_path: Path) -> None:
    path = tmp_path / "blocklist.yaml"
    path.write_text("regexes:\n  - fine\n  - '[a-'\n")
    with pytest.raises(SafetyError) as exc:
        load_blocklist(path)
    assert str(exc.value) == (
        f"{path}: regexes[1] '[a-' is not a valid regular expression: "
        "unterminated character set at position 0"
    )


def test_unreadable_blocklist_file(tmp_path: Path) -> None:
    with pytest.raises(SafetyError, match="cannot read the blocklist file"):
        load_blocklist(tmp_path / "missing.yaml")


def test_terms_keep_combining_marks_inside_words_and_scale_to_long_lists() -> None:
    terms = [f"word{i}" for i in range(2000)] + ["नमस्ते", "idiot!"]
    f = OutputFilter("none", parse_blocklist(f"terms: {terms!r}", "bl.yaml"))
    assert f.reason("नमस्ते दोस्त") == "blocklist_term"
    assert f.reason("नमस दोस्त") is None  # a part of the word, cut at its vowel sign
    assert f.reason("you idiot!") == "blocklist_term" and f.reason("you idiot") is None
    assert f.reason("word1999 here") == "blocklist_term" and f.reason("word2000") is None
