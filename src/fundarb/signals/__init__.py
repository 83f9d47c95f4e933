"""Signals: funding filters (DESIGN §7) and the strategies built on them, read from ``strategies/*.toml``."""
