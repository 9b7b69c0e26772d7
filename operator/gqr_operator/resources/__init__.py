"""Pure manifest builders: typed spec in, plain dict manifests out (no I/O, deterministic).

One module per kind of child. Owner references are added where the children are written
(`children.sync`, and `progress` for pipeline Jobs).
"""
