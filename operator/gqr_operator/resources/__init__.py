"""Pure manifest builders: typed spec in, plain dict manifests out (no I/O, deterministic).

One module per kind of child. The one exception to "deterministic": the gateway's signing
key Secret holds a random key, which is why it is created once and never compared or updated
(`children.create_once`). Owner references are added where the children are written
(`children.sync`, and `progress` for pipeline Jobs).
"""
