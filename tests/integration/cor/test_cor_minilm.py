"""The packaged all-MiniLM-L6-v2 encoder, offline, end to end on milvus-lite (slow-ish)."""

from __future__ import annotations

from pathlib import Path

import pytest
from testsupport.artifacts import cor_build_tsv, sessions_tsv

from gqr_contracts.job import JobResult
from gqr_serving.cor import CORService, MilvusQueryIndex, load_encoder

SESSIONS = [
    ("s1", ["cheap flights to paris", "paris hotels near louvre"]),
    ("s2", ["how to bake sourdough bread", "sourdough starter recipe"]),
    ("s3", ["python list comprehension", "python dictionary comprehension"]),
]


@pytest.mark.parametrize("runtime", ["torch", "numpy"])
def test_minilm_finds_a_paraphrase_neighbour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], runtime: str
) -> None:
    """The index cor-build writes (sentence-transformers) answers the NumPy encoder too."""
    tsv = sessions_tsv(tmp_path / "s.tsv", SESSIONS)
    uri, root = str(tmp_path / "milvus.db"), tmp_path / "art"
    rc = cor_build_tsv(tsv, root, "--index", "--milvus-uri", uri)
    result = JobResult.model_validate_json(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0, result.message
    encoder = load_encoder("minilm", runtime=runtime)
    assert encoder.dim == 384 and encoder.name == "st:all-MiniLM-L6-v2"
    svc = CORService(root, index=MilvusQueryIndex(uri), encoder=encoder)
    svc.refresh()
    # No word in common with "cheap flights to paris", but the same meaning.
    res = svc.retrieve("airfare to france", 3)
    assert res.neighbours[0][0] == "cheap flights to paris"
    assert [i.query for i in res.items] == ["paris hotels near louvre"]
    assert res.items[0].provenance == "neighbour"
