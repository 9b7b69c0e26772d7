"""The output filter on the request path: what a user is shown never carries a URL, an e-mail
address, a phone number or a blocklisted word, whether the LLM wrote it, COR supplied it or it
sat in an aux text; every drop is counted by reason in ``/metrics``."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from gateway_fakes import SUCCESSORS, ScriptedBackend, client, down

from gqr_serving.cor import CORRetriever
from gqr_serving.gateway import create_app
from gqr_serving.gateway.cli import main as gateway_main
from gqr_serving.gateway.settings import GatewaySettings, SettingsError
from gqr_serving.safety import SafetyError

pytestmark = pytest.mark.anyio
REQ = {"task": "suggestion", "query": "what is green tea", "num_queries": 6}
BLOCKLIST = "terms:\n  - idiot\nregexes:\n  - 'free\\s+money'\n"
UNSAFE = [
    "visit www.spam.com",
    "mail me at a@b.org",
    "call +1 415 555 0100",
    "you Idiot",
    "free  money now",
]
GOOD = ["green tea side effects", "matcha latte recipe"]


def _blocklist(tmp_path: Path, text: str = BLOCKLIST) -> Path:
    path = tmp_path / "blocklist.yaml"
    path.write_text(text)
    return path


def _problems(metrics: str) -> dict[str, float]:
    found = re.findall(r'gqr_gateway_output_problems_total\{code="(\w+)"\} ([\d.]+)', metrics)
    return {code: float(n) for code, n in found}


async def test_unsafe_llm_queries_are_dropped_and_counted_by_reason(tmp_path: Path) -> None:
    replies = {  # at most 6 queries a request: the unsafe ones over two requests
        "what is green tea": [UNSAFE[0], GOOD[0], *UNSAFE[1:4], GOOD[1]],
        "rome weather": [UNSAFE[4], "rome in may"],
    }
    backend = ScriptedBackend(
        lambda p: " <SEP> ".join(next(v for k, v in replies.items() if k in p.text))
    )
    async with client(tmp_path, backend, cor=None, blocklist_file=_blocklist(tmp_path)) as c:
        r = await c.post("/v1/recommend", json=REQ)
        r2 = await c.post("/v1/recommend", json={**REQ, "query": "rome weather"})
        metrics = (await c.get("/metrics")).text
    assert r.status_code == 200, r.text
    assert r.json()["queries"] == GOOD and r.json()["fallback"] is False
    assert r2.json()["queries"] == ["rome in may"]
    problems = _problems(metrics)
    for code in ("url", "email", "phone", "blocklist_term", "blocklist_regex"):
        assert problems.get(code) == 1.0, (code, problems)


async def test_filter_is_on_by_default_and_configurable(tmp_path: Path) -> None:
    reply = " <SEP> ".join(["visit www.spam.com", "mail me at a@b.org", GOOD[0]])
    async with client(tmp_path / "a", ScriptedBackend(reply), cor=None) as c:
        assert (await c.post("/v1/recommend", json=REQ)).json()["queries"] == [GOOD[0]]
    async with client(tmp_path / "b", ScriptedBackend(reply), cor=None, pii_filters="email") as c:
        assert (await c.post("/v1/recommend", json=REQ)).json()["queries"] == [
            "visit www.spam.com",
            GOOD[0],
        ]
    async with client(tmp_path / "c", ScriptedBackend(reply), cor=None, pii_filters="none") as c:
        assert len((await c.post("/v1/recommend", json=REQ)).json()["queries"]) == 3


async def test_cor_fallback_and_top_up_are_filtered_too(tmp_path: Path) -> None:
    successors = {
        **SUCCESSORS,
        "what is green tea": (
            ("green tea at teashop.com", 9),
            ("green tea benefits", 5),
            ("idiot tea", 4),
            ("matcha vs green tea", 2),
        ),
    }
    totals = {q: sum(n for _, n in rows) for q, rows in successors.items()}
    cor = CORRetriever(successors, totals, version="test")
    blocklist = _blocklist(tmp_path)
    async with client(
        tmp_path / "down", ScriptedBackend(down()), cor=cor, blocklist_file=blocklist
    ) as c:
        body = (await c.post("/v1/recommend", json=REQ)).json()
        metrics = (await c.get("/metrics")).text
    assert body["fallback"] is True
    assert body["queries"] == ["green tea benefits", "matcha vs green tea"]
    assert _problems(metrics) == {"url": 1.0, "blocklist_term": 1.0}

    async with client(
        tmp_path / "up", ScriptedBackend(GOOD[0]), cor=cor, blocklist_file=blocklist
    ) as c:
        body = (await c.post("/v1/recommend", json=REQ)).json()
        metrics = (await c.get("/metrics")).text
    assert body["queries"] == [GOOD[0], "green tea benefits", "matcha vs green tea"]
    assert _problems(metrics)["url"] == 1.0


async def test_unsafe_aux_text_is_dropped(tmp_path: Path) -> None:
    reply = (
        "guide: Ask me at help@poems.org which one\nprefix: write a poem about\n"
        "spring <SEP> the sea <SEP> my mother <SEP> a city night"
    )
    req = {"task": "clarification", "query": "write a poem", "num_queries": 4}
    async with client(tmp_path, ScriptedBackend(reply), cor=None) as c:
        body = (await c.post("/v1/recommend", json=req)).json()
        metrics = (await c.get("/metrics")).text
    assert body["aux_texts"] == {"prefix": "write a poem about"}
    assert body["queries"] == ["spring", "the sea", "my mother", "a city night"]
    problems = _problems(metrics)
    assert problems["email"] == 1.0 and problems["aux_dropped"] == 1.0


async def test_blocklist_is_hot_reloaded_and_a_bad_edit_keeps_the_last_good_one(
    tmp_path: Path,
) -> None:
    path = _blocklist(tmp_path, "terms: [matcha]\n")
    reply = " <SEP> ".join(GOOD)
    async with client(
        tmp_path, ScriptedBackend(reply), cor=None, blocklist_file=path, routing_poll_s=0.02
    ) as c:
        assert (await c.post("/v1/recommend", json=REQ)).json()["queries"] == [GOOD[0]]
        path.write_text("terms: [side effects]\n")
        for _ in range(200):
            await asyncio.sleep(0.02)
            if (await c.post("/v1/recommend", json=REQ)).json()["queries"] == [GOOD[1]]:
                break
        else:
            pytest.fail("the edited blocklist was not loaded")
        path.write_text("regexes: ['(unclosed']\n")
        for _ in range(200):
            await asyncio.sleep(0.02)
            if (
                'gqr_gateway_blocklist_reloads_total{result="error"} 1.0'
                in (await c.get("/metrics")).text
            ):
                break
        else:
            pytest.fail("the failed reload was not counted")
        assert (await c.post("/v1/recommend", json=REQ)).json()["queries"] == [GOOD[1]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "regexes:\n  - ok\n  - '(unclosed'\n",
            r"blocklist\.yaml: regexes\[1\] '\(unclosed' is not a valid regular expression: "
            r"missing \), unterminated subpattern",
        ),
        ("terms: idiot\n", r"blocklist\.yaml: terms must be a list of strings, got str"),
        ("words: [idiot]\n", r"blocklist\.yaml: unknown key 'words' \(accepted: terms, regexes\)"),
        ("terms: [idiot, '']\n", r"blocklist\.yaml: terms\[1\] = '': expected a non-empty string"),
        ("terms: [\n", r"blocklist\.yaml: not valid JSON/YAML"),
    ],
)
def test_bad_blocklist_file_stops_the_gateway_with_a_clear_error(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _blocklist(tmp_path, text)
    settings = GatewaySettings(
        log_root=str(tmp_path / "logs"), llm_url="http://127.0.0.1:9", blocklist_file=path
    )
    with pytest.raises(SafetyError, match=expected):
        create_app(settings)


def test_missing_blocklist_file_is_a_startup_error_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    argv = ["--log-root", str(tmp_path / "logs"), "--llm-url", "http://127.0.0.1:9"]
    with pytest.raises(SystemExit) as exc:
        gateway_main([*argv, "--blocklist-file", str(missing)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "cannot start" in err and f"{missing}: cannot read the blocklist file" in err


@pytest.mark.parametrize("value", ["urls", "email,fax", ""])
def test_bad_pii_filters_name_the_flag_the_value_and_the_choices(value: str) -> None:
    argv = ["--log-root", "/tmp/x", "--llm-url", "http://h", "--pii-filters", value]
    with pytest.raises(SettingsError) as exc:
        GatewaySettings.from_sources(argv, env={})
    msg = str(exc.value)
    assert "--pii-filters (GQR_GATEWAY_PII_FILTERS)" in msg and repr(value) in msg
    assert "accepted: all, none, or a comma list of url, email, phone, card, iban" in msg


def test_pii_filters_from_the_environment() -> None:
    env = {"GQR_GATEWAY_PII_FILTERS": "url, phone"}
    s = GatewaySettings.from_sources(["--log-root", "/tmp/x", "--llm-url", "http://h"], env=env)
    assert s.pii_filters == "url, phone"
