"""``python -m fundarb.cli``."""

from fundarb.cli import run

run()
