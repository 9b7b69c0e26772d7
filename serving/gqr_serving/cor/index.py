"""Versioned Milvus collections of known-query vectors, with an atomic alias switch.

Each COR version gets its own collection ``<prefix>__<version>``; the alias ``<prefix>``
names the serving one. One prefix per deployment (the operator derives it from the namespace
and name): deployments sharing a Milvus must not share a prefix, or each would switch and
prune the other's collections. A collection is filled, flushed, indexed and loaded before the alias
moves, so a search through the alias never meets a half-built index; readers that resolved
the old version keep working until it is pruned (``keep`` versions stay).

``uri`` is a milvus-lite folder ending in ``.db`` (embedded, one process at a time) or a
Milvus server URI (``http://host:19530``) with an optional ``token``. Any failure to reach
Milvus or to get an answer from it raises :class:`CORUnavailable`.

Partitions (IVF-style routing in front of the per-partition HNSW): a collection of many rows
is split by spherical k-means into ``partitions`` Milvus partitions ``c0..c{P-1}``; the
centroids are stored in the same collection (partition ``centroids``, ids -1..-P), so they are
versioned, switched and pruned with it. A search goes to the ``probe`` partitions whose
centroids are nearest the query. Why: milvus-lite 3.x walks every stored primary key of the
searched segments in Python on each search call (dedup and delete masks, ~0.5 us a row), so a
search of the whole collection costs ~11-14 ms at 15-21k rows and 565 ms at 1M, whatever the
index; searching 3 of 10 partitions touches under a third of them. A Milvus server does less
work too. Recall against the exact neighbours is measured by
``benchmarks/bench_cor_partitions.py`` (query text) and ``bench_cor_scale.py`` (synthetic):
with the packaged MiniLM on the simulated world's queries, 3 of 10 partitions keep all of the
top 10 (0.88 with the hashing:64 encoder).
A collection built without partitions (older versions, small ones) is searched whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from gqr_serving.cor.errors import CORUnavailable, IndexMismatch
from gqr_serving.cor.neighbours import Neighbours

MAX_QUERY_BYTES = 2048
_SEP = "__"
_CODES = {"_": "_0", ".": "_1", "-": "_2"}
_CHARS = {v[1]: k for k, v in _CODES.items()}
_ESCAPE = re.compile(r"[_.-]")
_UNESCAPE = re.compile(r"_(.)")
_NO_KEEPALIVE = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": 0}


DEFAULT_PREFIX = "gqr_cor"
ROUTING_PARTITION = "centroids"
"""Partition holding the k-means centroids of a partitioned collection (ids -1..-P)."""
MAX_PARTITIONS = 256
"""Most partitions a collection is split into (a Milvus server allows 1024 per collection)."""
AUTO_MIN_ROWS = 8000
"""Below this many rows a collection is not partitioned (a whole search costs < ~5 ms)."""
AUTO_ROWS_PER_PARTITION = 1500
MAX_ROUTED_CALLS = 2
"""A batch needing more partition routes than this is searched whole, in one call."""


def auto_partitions(rows: int) -> int:
    """Partitions for ``rows`` known queries: none below 8,000, then one per ~1,500 rows, at
    most 256 (21k rows -> 14; 1M -> 256)."""
    if rows < AUTO_MIN_ROWS:
        return 0
    return min(MAX_PARTITIONS, rows // AUTO_ROWS_PER_PARTITION)


def spherical_kmeans(
    vectors: np.ndarray, k: int, *, iterations: int = 15, sample: int = 50_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(centroids (k, dim) unit rows, assignment (n,))`` by cosine: fitted on a seeded sample
    of at most ``sample`` rows, then every row goes to its nearest centroid. A cluster left
    empty is re-seeded with the sample row its centroid serves worst."""
    n = len(vectors)
    if not 1 <= k <= n:
        raise ValueError(f"k={k} partitions need 1 <= k <= rows ({n})")
    rng = np.random.default_rng(seed)
    unit = _normalise(np.asarray(vectors, dtype=np.float32))
    fit = unit[rng.choice(n, size=min(n, sample), replace=False)] if n > sample else unit
    cent = fit[rng.choice(len(fit), size=k, replace=False)].copy()
    for _ in range(iterations):
        sims = fit @ cent.T
        assign = sims.argmax(1)
        best = sims[np.arange(len(fit)), assign]
        sums = np.zeros_like(cent)
        np.add.at(sums, assign, fit)
        counts = np.bincount(assign, minlength=k)
        for j in np.where(counts == 0)[0]:
            worst = int(best.argmin())
            sums[j], best[worst] = fit[worst], np.inf
        cent = _normalise(sums)
    assign = np.concatenate([(unit[i : i + 65536] @ cent.T).argmax(1) for i in range(0, n, 65536)])
    return cent, assign


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def check_prefix(prefix: str) -> str:
    """A valid collection/alias prefix, or ValueError naming the rule: a letter or '_' first,
    then letters, digits and single underscores ('__' separates the version), 1-101 long."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,100}", prefix) or _SEP in prefix:
        raise ValueError(
            f"prefix {prefix!r} must start with a letter or '_', hold only letters, digits and "
            "single underscores, and be at most 101 characters"
        )
    return prefix


class MilvusQueryIndex:
    """Client for the COR vector collections of one deployment (``prefix``)."""

    def __init__(
        self,
        uri: str,
        *,
        token: str = "",
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 10.0,
        hnsw_m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        partitions: int | None = None,
        probe: int = 3,
    ) -> None:
        """``partitions``: k-means partitions a build splits the collection into (None: by
        :func:`auto_partitions`; 0 or 1: none). ``probe``: partitions a search visits."""
        self.uri, self.token, self.prefix, self.timeout = uri, token, check_prefix(prefix), timeout
        self.hnsw_m, self.ef_construction, self.ef_search = hnsw_m, ef_construction, ef_search
        if partitions is not None and not 0 <= partitions <= MAX_PARTITIONS:
            raise ValueError(f"partitions={partitions} (accepted: 0-{MAX_PARTITIONS}, or auto)")
        if probe < 1:
            raise ValueError(f"probe={probe} (accepted: >= 1 partitions per search)")
        self.partitions, self.probe = partitions, probe
        self._client: Any = None

    # -- connection ----------------------------------------------------------------------

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except (CORUnavailable, IndexMismatch, ValueError):
            raise
        except Exception as exc:  # pymilvus raises MilvusException and raw grpc errors
            raise CORUnavailable(f"Milvus at {self.uri} failed to {what}: {exc}") from exc

    @property
    def client(self) -> Any:
        if self._client is None:
            from pymilvus import MilvusClient

            # milvus-lite serves from this process; its gRPC server answers keepalive pings
            # during a long call (create_index on 300k rows) with GOAWAY "too_many_pings", and
            # pymilvus then retries the call, which fails. No pings for it, then.
            lite = {"grpc_options": _NO_KEEPALIVE} if self.uri.endswith(".db") else {}
            with self._guard("connect"):
                self._client = MilvusClient(
                    uri=self.uri, token=self.token, timeout=self.timeout, **lite
                )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- names ---------------------------------------------------------------------------

    def collection_name(self, version: str) -> str:
        """``<prefix>__<version>``; '_', '.', '-' escaped as '_0', '_1', '_2' (Milvus names)."""
        return f"{self.prefix}{_SEP}" + _ESCAPE.sub(lambda m: _CODES[m.group()], version)

    def version_of(self, collection: str) -> str | None:
        head = f"{self.prefix}{_SEP}"
        if not collection.startswith(head):
            return None
        return _UNESCAPE.sub(lambda m: _CHARS.get(m.group(1), "?"), collection[len(head) :])

    def versions(self) -> list[str]:
        """Versions with a collection (complete or not), sorted by name."""
        with self._guard("list collections"):
            names = self.client.list_collections(timeout=self.timeout)
        return sorted(v for n in names if (v := self.version_of(n)) is not None)

    # -- build and switch ----------------------------------------------------------------

    def build(
        self,
        version: str,
        queries: Sequence[str],
        vectors: np.ndarray,
        *,
        batch_size: int = 5000,
        progress: Callable[[int], None] | None = None,
    ) -> str:
        """Create (or recreate) the version's collection, fill, index and load it."""
        if len(queries) != len(vectors):
            raise ValueError(f"{len(queries)} queries but {len(vectors)} vectors")
        from pymilvus import DataType, MilvusClient

        name, dim = self.collection_name(version), int(vectors.shape[1])
        client = self.client
        with self._guard(f"build collection {name}"):
            if client.has_collection(name, timeout=self.timeout):
                if name == self.current_collection():
                    raise ValueError(f"version {version!r} is serving; build a new version")
                client.drop_collection(name, timeout=self.timeout)
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("query", DataType.VARCHAR, max_length=MAX_QUERY_BYTES)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
            # The index is created after the rows are in: milvus-lite (3.x) builds it then, per
            # segment, inside create_index. Created with the collection, it is loaded at once and
            # segments get their index from a background thread after load returns, so the first
            # searches after a switch scan unindexed segments while that build takes the CPU.
            client.create_collection(name, schema=schema, timeout=self.timeout)
            vecs = np.ascontiguousarray(vectors, dtype=np.float32)
            n_parts = auto_partitions(len(queries)) if self.partitions is None else self.partitions
            n_parts = min(n_parts, len(queries))
            groups: list[tuple[str | None, np.ndarray]] = [(None, np.arange(len(queries)))]
            extra = 0
            if n_parts > 1:
                cent, assign = spherical_kmeans(vecs, n_parts)
                groups = [(f"c{j}", np.where(assign == j)[0]) for j in range(n_parts)]
                for part, _ in groups:
                    client.create_partition(name, part, timeout=self.timeout)
                client.create_partition(name, ROUTING_PARTITION, timeout=self.timeout)
                routing = [
                    {"id": -(j + 1), "query": f"centroid {j}", "vector": cent[j]}
                    for j in range(n_parts)
                ]
                client.insert(name, routing, partition_name=ROUTING_PARTITION, timeout=self.timeout)
                extra = n_parts
            for part, ids in groups:
                for start in range(0, len(ids), batch_size):
                    chunk = ids[start : start + batch_size]
                    rows = [
                        {"id": int(i), "query": _clip(queries[i]), "vector": vecs[i]} for i in chunk
                    ]
                    kw = {} if part is None else {"partition_name": part}
                    client.insert(name, rows, timeout=max(self.timeout, 60.0), **kw)
                    if progress is not None:
                        progress(len(chunk))
            client.flush(name, timeout=max(self.timeout, 600.0))
            # Build parameters nested under "params" (the classic wire form, which Milvus also
            # takes): milvus-lite 3.x reads only that key and silently drops the flat "M" and
            # "efConstruction" that add_index(params=...) would send, building with its defaults.
            hnsw = {"M": self.hnsw_m, "efConstruction": self.ef_construction}
            params = client.prepare_index_params()
            params.add_index(
                field_name="vector",
                index_type="HNSW",
                metric_type="COSINE",
                params={"params": hnsw},
            )
            client.create_index(name, params, timeout=max(self.timeout, 3600.0))
            client.load_collection(name, timeout=max(self.timeout, 3600.0))
            count = int(client.get_collection_stats(name)["row_count"])
        if count != len(queries) + extra:
            raise CORUnavailable(
                f"collection {name} holds {count} rows, expected {len(queries) + extra}"
            )
        return name

    def current_collection(self) -> str | None:
        """The collection the alias points at, or None before the first switch."""
        with self._guard(f"resolve alias {self.prefix}"):
            if self.prefix not in self.client.list_aliases(timeout=self.timeout)["aliases"]:
                return None
            info = self.client.describe_alias(self.prefix, timeout=self.timeout)
        return str(info["collection_name"])

    def current_version(self) -> str | None:
        name = self.current_collection()
        return None if name is None else self.version_of(name)

    def switch(self, version: str) -> None:
        """Point the alias at a built version: one metadata update, atomic for readers."""
        name = self.collection_name(version)
        with self._guard(f"switch alias {self.prefix} to {name}"):
            if not self.client.has_collection(name, timeout=self.timeout):
                raise ValueError(f"version {version!r} has no collection {name}; build it first")
            if self.current_collection() is None:
                self.client.create_alias(name, self.prefix, timeout=self.timeout)
            else:
                self.client.alter_alias(name, self.prefix, timeout=self.timeout)

    def prune(self, keep: int = 2) -> list[str]:
        """Drop all but the newest ``keep`` versions (never the serving one); return dropped."""
        current = self.current_version()
        versions = [v for v in self.versions() if v != current]
        doomed = versions[: max(0, len(versions) - max(0, keep - (current is not None)))]
        with self._guard("prune old collections"):
            for version in doomed:
                self.client.drop_collection(self.collection_name(version), timeout=self.timeout)
        return doomed

    def has_version(self, version: str) -> bool:
        with self._guard("check collection"):
            return bool(self.client.has_collection(self.collection_name(version)))

    # -- search --------------------------------------------------------------------------

    def searcher(self, version: str, dim: int) -> VersionSearch:
        """A :class:`NeighbourSearch` bound to one version's collection (not the alias)."""
        name = self.collection_name(version)
        with self._guard(f"describe {name}"):
            desc = self.client.describe_collection(name, timeout=self.timeout)
            # A reopened milvus-lite (or a restarted server) starts with collections released.
            self.client.load_collection(name, timeout=max(self.timeout, 600.0))
            field = next(f for f in desc["fields"] if f["name"] == "vector")
            have = int(field["params"]["dim"])
            if have != dim:
                raise IndexMismatch(
                    f"collection {name} holds dim {have} vectors; encoder gives {dim}"
                )
            centroids = None
            if ROUTING_PARTITION in self.client.list_partitions(name, timeout=self.timeout):
                rows = self.client.query(
                    name,
                    filter="id < 0",
                    partition_names=[ROUTING_PARTITION],
                    output_fields=["id", "vector"],
                    timeout=self.timeout,
                )
                rows.sort(key=lambda r: -int(r["id"]))
                centroids = np.asarray([r["vector"] for r in rows], dtype=np.float32)
        return VersionSearch(self, name, centroids)

    def search(
        self,
        collection: str,
        vectors: np.ndarray,
        k: int,
        partitions: Sequence[str] | None = None,
    ) -> Neighbours:
        """Top ``k`` known queries per vector, in ``partitions`` only when given."""
        kw = {} if partitions is None else {"partition_names": list(partitions)}
        with self._guard(f"search {collection}"):
            hits = self.client.search(
                collection,
                data=[np.asarray(v, dtype=np.float32) for v in vectors],
                limit=k,
                output_fields=["query"],
                search_params={"metric_type": "COSINE", "params": {"ef": max(self.ef_search, k)}},
                timeout=self.timeout,
                **kw,
            )
        return [[(h["entity"]["query"], float(h["distance"])) for h in row] for row in hits]

    def fetch(
        self, collection: str, ids: Sequence[int], *, batch_size: int = 1000
    ) -> dict[int, tuple[str, np.ndarray]]:
        """Stored (query, vector) of the rows ``ids`` (those that exist), by id."""
        out: dict[int, tuple[str, np.ndarray]] = {}
        with self._guard(f"fetch vectors from {collection}"):
            for start in range(0, len(ids), batch_size):
                rows = self.client.get(
                    collection,
                    ids=[int(i) for i in ids[start : start + batch_size]],
                    output_fields=["query", "vector"],
                    timeout=max(self.timeout, 60.0),
                )
                for row in rows:
                    vec = np.asarray(row["vector"], dtype=np.float32)
                    out[int(row["id"])] = (str(row["query"]), vec)
        return out


class VersionSearch:
    """Searches one fixed collection, whatever the alias does meanwhile; routes each query to
    the ``index.probe`` partitions nearest it when the collection is partitioned."""

    def __init__(
        self, index: MilvusQueryIndex, collection: str, centroids: np.ndarray | None = None
    ) -> None:
        self.index, self.collection, self.centroids = index, collection, centroids

    @property
    def partitions(self) -> int:
        return 0 if self.centroids is None else len(self.centroids)

    def route(self, vectors: np.ndarray) -> list[tuple[str, ...]] | None:
        """The partitions each vector is searched in (None: the whole collection)."""
        if self.centroids is None or self.index.probe >= len(self.centroids):
            return None
        sims = np.asarray(vectors, dtype=np.float32) @ self.centroids.T
        top = np.argpartition(-sims, self.index.probe - 1, axis=1)[:, : self.index.probe]
        return [tuple(f"c{j}" for j in sorted(row.tolist())) for row in top]

    def search(self, vectors: np.ndarray, k: int) -> Neighbours:
        """Each vector in its own partitions; a batch whose vectors need more than
        ``MAX_ROUTED_CALLS`` different routes (a cache warm-up) is one search of the whole
        collection instead: milvus-lite's per-row cost is paid once per call, not per vector."""
        routes = self.route(vectors)
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, parts in enumerate(routes or []):
            groups.setdefault(parts, []).append(i)
        if routes is None or len(groups) > MAX_ROUTED_CALLS:
            return self.index.search(self.collection, vectors, k)
        out: Neighbours = [[] for _ in range(len(vectors))]
        vecs = np.asarray(vectors)
        for parts, rows in groups.items():  # one call per distinct route (a batch shares them)
            hits = self.index.search(self.collection, vecs[rows], k, parts)
            for i, row in zip(rows, hits, strict=True):
                out[i] = row
        return out

    def stored_vectors(self, wanted: dict[int, str]) -> dict[str, np.ndarray]:
        """The vectors stored for rows ``wanted`` (id -> query; :meth:`MilvusQueryIndex.build`
        gives a query the id of its position in the list it was built from), where the stored
        query text matches: known queries need not be encoded again."""
        rows = self.index.fetch(self.collection, list(wanted))
        return {q: rows[i][1] for i, q in wanted.items() if i in rows and rows[i][0] == _clip(q)}


def _clip(query: str) -> str:
    raw = query.encode()
    return query if len(raw) <= MAX_QUERY_BYTES else raw[:MAX_QUERY_BYTES].decode(errors="ignore")
