"""Teacher annotation against a local OpenAI-style chat server (the stand-in for a teacher LLM:
no LLM runs here). The server answers in the template's format, with some noise to clean up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from testsupport.http_function import FunctionServer, Reply, json_reply
from testsupport.toyworld import requests

from gqr_training.align.data import read_jsonl, request_row, write_jsonl
from gqr_training.cli import main as gqr


def teacher(method: str, path: str, body: bytes) -> Reply:
    """The OpenAI chat completions shape; a 500 for the query "gre test"."""
    user = json.loads(body)["messages"][-1]["content"]
    query = user.split("<query>\n", 1)[1].split("\n", 1)[0]
    if query == "gre test":
        return Reply(500)
    text = f"Here are some queries:\n1. {query} prices <SEP> 2. {query} reviews <SEP> {query}"
    return json_reply({"choices": [{"message": {"role": "assistant", "content": text}}]})


@pytest.fixture
def teacher_url() -> Iterator[str]:
    with FunctionServer(teacher) as server:
        yield server.url


def test_annotate_writes_clean_sft_rows(teacher_url: str, tmp_path: Path) -> None:
    reqs = requests(10, seed=3)
    write_jsonl(tmp_path / "reqs.jsonl", (request_row(r) for r in reqs))
    out = tmp_path / "sft.jsonl"
    rc = gqr(["annotate", "--teacher-url", teacher_url, "--requests", str(tmp_path / "reqs.jsonl"),
              "--out", str(out), "--augment", "1"])  # fmt: skip
    failed = sum(r.query == "gre test" for r in reqs)
    rows = read_jsonl(out)
    assert rc == 0 and len(rows) == 2 * (len(reqs) - failed)
    for row in rows:
        query = row["prompt"].split("<query>\n", 1)[1].split("\n", 1)[0]
        # numbering and the preamble removed, the copy of the user query dropped
        assert sorted(row["completion"].split(" <SEP> ")) == [f"{query} prices", f"{query} reviews"]
