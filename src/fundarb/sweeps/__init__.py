"""Parameter sweeps (``fundarb.sweep``). The package is ``sweeps`` so that it never shadows the function."""
