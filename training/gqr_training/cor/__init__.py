"""COR training side: build the co-occurrence artifact (``cor-build``), tune, evaluate."""
