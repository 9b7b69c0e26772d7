"""The k-means that splits a COR collection into partitions, and how many partitions auto picks."""

from __future__ import annotations

import numpy as np
import pytest

from gqr_serving.cor.index import auto_partitions, spherical_kmeans


def test_auto_partitions_grow_with_the_collection_and_stop_at_the_cap() -> None:
    assert auto_partitions(0) == auto_partitions(7999) == 0
    assert auto_partitions(8000) == 5
    assert auto_partitions(21_000) == 14
    assert auto_partitions(1_000_000) == 256


def test_kmeans_finds_planted_clusters_and_assigns_every_row_to_its_nearest_centroid() -> None:
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((6, 16))
    labels = np.repeat(np.arange(6), 50)
    x = centres[labels] + 0.05 * rng.standard_normal((300, 16))
    cent, assign = spherical_kmeans(x, 6, seed=1)
    assert cent.shape == (6, 16)
    assert np.allclose(np.linalg.norm(cent, axis=1), 1.0, atol=1e-5)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert (assign == (unit @ cent.T).argmax(1)).all()
    # each planted cluster lands in exactly one partition (a relabelling of the truth)
    pairs = set(zip(labels.tolist(), assign.tolist(), strict=True))
    assert len(pairs) == 6 and len({a for _, a in pairs}) == 6
    again, assign2 = spherical_kmeans(x, 6, seed=1)
    assert np.array_equal(cent, again) and np.array_equal(assign, assign2)  # seeded


def test_kmeans_leaves_no_partition_empty() -> None:
    x = np.vstack([np.tile([1.0, 0.0, 0.0], (97, 1)), np.eye(3)])  # 97 identical rows
    _cent, assign = spherical_kmeans(x, 3, seed=0)
    assert sorted(np.bincount(assign, minlength=3).tolist())[0] >= 1


def test_kmeans_rejects_more_partitions_than_rows() -> None:
    with pytest.raises(ValueError, match="k=5 partitions need 1 <= k <= rows \\(3\\)"):
        spherical_kmeans(np.eye(3), 5)
