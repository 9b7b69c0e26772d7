"""The operator's default stats query is one the gateway it deploys accepts (with `since`, the
step's start), and the analysis counts impressions with a click (a Bernoulli rate), not raw
clicks."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from tests.unit.operator.cases import MINIMAL

from gqr_operator import observe
from gqr_operator.models import parse_spec
from gqr_operator.observe import StatsUnavailable, parse_stats, stats_url
from gqr_serving.gateway.stats import LogStats, parse_since, parse_window


def test_default_stats_window_is_within_the_gateways_limit() -> None:
    url = stats_url("demo", "ns", parse_spec(MINIMAL))
    window = parse_qs(urlparse(url).query)["window"][0]
    limit = inspect.signature(LogStats.__init__).parameters["max_window_s"].default
    assert 0 < parse_window(window) <= limit


def test_successes_are_clicked_impressions() -> None:
    rows = [
        {"arm": "stable", "model_version": "a", "impressions": 100, "clicks": 30,
         "clicked_impressions": 20},
        {"arm": "canary", "model_version": "b", "impressions": 50, "clicks": 12},
    ]  # fmt: skip
    stats = parse_stats({"arms": rows, "start": 1740830400.0}, "a", "b")
    assert (stats.stable.impressions, stats.stable.clicks) == (100, 20)
    assert (stats.canary.impressions, stats.canary.clicks) == (50, 12)  # older gateways
    assert stats.start == datetime(2025, 3, 1, 12, tzinfo=UTC)


def test_since_joins_the_urls_own_query(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def get(url: str, timeout: float) -> httpx.Response:
        asked.append(url)
        return httpx.Response(200, json={"arms": [], "start": 0}, request=httpx.Request("GET", url))

    monkeypatch.setattr(observe.httpx, "get", get)
    url = stats_url("demo", "ns", parse_spec(MINIMAL))
    observe.fetch_stats(url + "&since=old", "a", "b", "2025-03-01T12:00:00Z")
    query = parse_qs(urlparse(asked[0]).query)
    assert query == {"window": ["14d"], "since": ["2025-03-01T12:00:00Z"]}
    assert parse_since(query["since"][0]) == 1740830400.0  # the gateway reads what we send


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ({"arms": []}, "no `start`"),
        ({"start": 0, "arms": [{"arm": "stable", "model_version": "a"}]}, "impressions"),
        ({"start": 0, "arms": [{"arm": "stable", "model_version": "a", "impressions": -1}]},
         "impressions=-1"),
        ([1, 2], "not a /v1/stats answer"),
    ],
)  # fmt: skip
def test_an_answer_outside_the_contract_holds_the_rollout_with_the_reason(
    doc: object, why: str
) -> None:
    with pytest.raises(StatsUnavailable, match=re.escape(why)):
        parse_stats(doc, "a", "b")
