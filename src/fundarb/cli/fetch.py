"""``fundarb fetch``: download exchange history into the Parquet store."""

from __future__ import annotations

import typer

from fundarb.cli.app import app


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def fetch(ctx: typer.Context) -> None:
    """Download spot, perp, mark and funding history with ccxt into the Parquet store (fundarb fetch --help)."""
    from fundarb.data.fetch import main as fetch_main

    code = fetch_main(list(ctx.args))
    if code:
        raise typer.Exit(code)
