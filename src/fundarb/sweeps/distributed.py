"""Running chunks of a grid in this process or on a Dask cluster.

With a scheduler, the market data is scattered once to every worker (``broadcast=True``): each chunk task
receives a reference to the worker's copy, so the data crosses the network once per worker, not once per chunk.
Each chunk runs :func:`fundarb.sweeps.grid.run_points` — the same compiled kernels as a local run — and the
results come back in grid order, so a distributed sweep equals the local one exactly. Dask is imported only here,
and only when a scheduler is given.

Pointing at an existing cluster: start ``dask scheduler`` on one machine and ``dask worker tcp://HOST:8786`` on
each worker (with fundarb installed, same version), then pass ``scheduler="tcp://HOST:8786"`` (or
``--scheduler tcp://HOST:8786`` on the command line).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from fundarb.data.market import MarketData
from fundarb.errors import ConfigError

__all__ = ["CONNECT_TIMEOUT", "connect", "map_chunks", "progress_enabled"]

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a scheduler address to answer before giving up."""


def progress_enabled(progress: bool | None, n_chunks: int) -> bool:
    """Whether to draw a progress bar: as asked, else only on a terminal, not under CI, and for several chunks."""
    if progress is not None:
        return bool(progress) and n_chunks > 1
    if n_chunks <= 1 or os.environ.get("CI"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def connect(scheduler: Any, *, timeout: float | None = None) -> tuple[Any, bool]:
    """A ``dask.distributed.Client`` for ``scheduler`` (an address or a Client); the flag says we opened it.

    An address that does not answer within ``timeout`` seconds (default :data:`CONNECT_TIMEOUT`) is a ConfigError.
    """
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    if not isinstance(scheduler, str):
        if type(scheduler).__name__ != "Client" or not hasattr(scheduler, "submit"):
            raise ConfigError(f"scheduler must be an address like 'tcp://host:8786' or a dask.distributed.Client, "
                              f"got {type(scheduler).__name__}")
        return scheduler, False
    if "://" not in scheduler and ":" not in scheduler:
        raise ConfigError(f"scheduler {scheduler!r} is not an address; write e.g. tcp://host:8786")
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - a dependency
        raise ConfigError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    try:
        return Client(scheduler, timeout=timeout, set_as_default=False), True
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"no Dask scheduler answered at {scheduler} within {timeout:g} s ({type(exc).__name__}); "
                          "check the address and that `dask scheduler` is running there") from None


def _run_chunk(market: MarketData, chunk: Sequence[Any], opts: dict[str, Any]) -> Any:
    from fundarb.sweeps.grid import run_points

    book, accounts, _ = run_points(market, chunk, **opts)
    return book, accounts


def map_chunks(
    market: MarketData,
    chunks: Sequence[Sequence[Any]],
    opts: dict[str, Any],
    *,
    scheduler: Any = None,
    progress: bool | None = None,
    desc: str = "sweep",
    run: Callable[[MarketData, Sequence[Any], dict[str, Any]], Any] = _run_chunk,
) -> list[Any]:
    """``run(market, chunk, opts)`` for every chunk, in order; locally or on the Dask cluster ``scheduler``."""
    bar = None
    if progress_enabled(progress, len(chunks)):
        from tqdm import tqdm

        bar = tqdm(total=len(chunks), desc=desc, unit="chunk", file=sys.stderr)
    try:
        if scheduler is None:
            out = []
            for chunk in chunks:
                out.append(run(market, chunk, opts))
                if bar is not None:
                    bar.update(1)
            return out
        client, owned = connect(scheduler)
        try:
            # a fresh key per call (hash=False): re-scattering the same data under its content hash while the
            # previous call's copy is being released loses it on the workers ("lost dependencies")
            data = client.scatter(market, broadcast=True, hash=False)
            futures = [client.submit(run, data, chunk, opts, pure=False) for chunk in chunks]
            results: list[Any] = []
            for fut in futures:  # in grid order; the workers run ahead
                results.append(fut.result())
                if bar is not None:
                    bar.update(1)
            return results
        finally:
            if owned:
                client.close()
    finally:
        if bar is not None:
            bar.close()
