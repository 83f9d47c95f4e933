"""The ``fundarb`` command line: one module per command group, all registered on :data:`fundarb.cli.app.app`."""

from __future__ import annotations

import os
import sys

import typer

from fundarb.cli import backtest, calc, data, fetch, sweep, walkforward  # noqa: F401  (registers the commands)
from fundarb.cli.app import app
from fundarb.errors import FundarbError

try:  # typer ≥ 0.17 carries its own copy of click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, NoArgsIsHelpError  # type: ignore[assignment]

__all__ = ["app", "main", "run"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; errors — fundarb's and the command line's own usage errors — become one ``error:`` line on
    stderr and exit code 2 (no traceback, no usage box)."""
    bad_env = _environment_error(os.environ)
    if bad_env:
        typer.echo(f"error: {bad_env}", err=True)
        return 2
    try:
        code = app(args=argv, prog_name="fundarb", standalone_mode=False)
    except NoArgsIsHelpError:
        return 2  # the help was printed
    except FundarbError as exc:
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        return 2
    except ClickException as exc:
        typer.echo(f"error: {_one_line(exc.format_message())} (see --help)", err=True)
        return exc.exit_code if exc.exit_code else 2
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code if isinstance(code, int) else 0


def _environment_error(env: os._Environ[str] | dict[str, str]) -> str | None:
    """Why the environment cannot run the kernels, checked before Numba is imported (which would raise a
    traceback for a thread count below 1 and ignore one that is not a number)."""
    threads = env.get("NUMBA_NUM_THREADS", "").strip()
    if threads and not (threads.isdecimal() and int(threads) >= 1):
        return (f"NUMBA_NUM_THREADS must be a whole number ≥ 1 (the threads the kernels run on), got {threads!r}; "
                "unset it to use every core")
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
