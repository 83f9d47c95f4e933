"""The ``fundarb`` command line: one module per command group, all registered on :data:`fundarb.cli.app.app`."""

from __future__ import annotations

import sys

import typer

from fundarb.cli import backtest, calc, data, fetch, sweep, walkforward  # noqa: F401  (registers the commands)
from fundarb.cli.app import app
from fundarb.errors import FundarbError

__all__ = ["app", "main", "run"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; fundarb's errors become one line on stderr and exit code 2 (no traceback)."""
    try:
        app(args=argv, prog_name="fundarb")
    except FundarbError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
