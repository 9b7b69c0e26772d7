"""Child names stay valid DNS-1123 labels within 63 characters and never collide."""

from __future__ import annotations

import re

from gqr_operator.resources.naming import child_name, dns_label, label_value, labels

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def test_short_names_are_kept() -> None:
    assert child_name("followup", "llm", "v1") == "followup-llm-v1"
    assert label_value("followup.prod") == "followup.prod"


def test_long_names_are_cut_with_a_hash() -> None:
    a = child_name("x" * 100 + "a", "llm", "v1")
    b = child_name("x" * 100 + "b", "llm", "v1")
    assert len(a) == len(b) == 63 and a != b
    assert DNS_LABEL.match(a)
    assert child_name("x" * 100, "ctr", max_len=45).__len__() <= 45


def test_odd_names_become_labels() -> None:
    for raw in ("9lives", "a.b.c", "-x-", "UPPER_case", "a" * 300):
        assert DNS_LABEL.match(dns_label(raw)), raw
        assert len(dns_label(raw)) <= 63


def test_labels_carry_arm_only_when_given() -> None:
    assert "gqr.dev/arm" not in labels("x", "llm", "v1")
    assert labels("x", "llm", "v1", "canary")["gqr.dev/arm"] == "canary"
    assert labels("x" * 200, "gateway")["app.kubernetes.io/instance"].__len__() <= 63
