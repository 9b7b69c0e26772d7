"""The PNG figures commands write beside their numbers: one headless (Agg) matplotlib figure at
a time, laid out, saved and closed the same way everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def figure(path: str | Path, figsize: tuple[float, float], dpi: int = 110) -> Iterator[Any]:
    """The axes of a new figure of ``figsize`` inches; when the block ends, the figure is laid
    out and written to ``path`` (its folder made) at ``dpi``, then closed (closed, unwritten,
    when the block raises)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    try:
        yield ax
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
