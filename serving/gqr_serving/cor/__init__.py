"""Co-occurrence retrieval (COR, paper §3.3) at request time.

What users search next after q (its successors, from session logs) is the COR side
information; unseen or sparse queries borrow the successors of their nearest known queries
(query encoder + Milvus). Building the artifact is ``gqr_training.cor`` (``cor-build``).
"""

from gqr_serving.cor.artifact import CORArtifact, list_versions, load_artifact, read_current
from gqr_serving.cor.encoders import (
    HashingEncoder,
    QueryEncoder,
    SentenceTransformerEncoder,
    load_encoder,
    packaged_minilm_path,
)
from gqr_serving.cor.errors import CORUnavailable, IndexMismatch, QueryTooLong
from gqr_serving.cor.index import MilvusQueryIndex
from gqr_serving.cor.neighbours import ExactNeighbourIndex, NeighbourSearch
from gqr_serving.cor.normalize import dedup_key, normalize_query
from gqr_serving.cor.retrieve import (
    CORItem,
    CORRetriever,
    RetrievalConfig,
    RetrievalResult,
    side_info,
)
from gqr_serving.cor.service import CORService, index_artifact

__all__ = [
    "CORArtifact",
    "CORItem",
    "CORRetriever",
    "CORService",
    "CORUnavailable",
    "ExactNeighbourIndex",
    "HashingEncoder",
    "IndexMismatch",
    "MilvusQueryIndex",
    "NeighbourSearch",
    "QueryEncoder",
    "QueryTooLong",
    "RetrievalConfig",
    "RetrievalResult",
    "SentenceTransformerEncoder",
    "dedup_key",
    "index_artifact",
    "list_versions",
    "load_artifact",
    "load_encoder",
    "normalize_query",
    "packaged_minilm_path",
    "read_current",
    "side_info",
]
