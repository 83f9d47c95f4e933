"""Sweeps and walk-forward on a Dask cluster: two local worker processes, identical results to the local run."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

import fundarb as fa
from fundarb.errors import ConfigError

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                     dashboard_address=None)
    try:
        yield c
    finally:
        c.close()


def test_distributed_sweep_equals_local(cluster):
    from distributed import Client

    m = fa.demo_market(days=90)
    grid = {"window": ["1d", "3d", "7d"], "entry": [0.05, 0.1, 0.2], "margin_mode": ["isolated", "cross"]}
    local = fa.sweep(m, fa.FundingCarry(), grid, chunk_size=4)
    remote = fa.sweep(m, fa.FundingCarry(), grid, chunk_size=4, scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(remote.table, local.table)
    pd.testing.assert_frame_equal(remote.per_symbol, local.per_symbol)
    with Client(cluster) as client:
        rot = fa.sweep(m, fa.TopNRotation(), {"n": [1, 2, 3]}, chunk_size=1, scheduler=client)
        assert client.status == "running"  # a Client passed in is left open
        # the market data is scattered once to each worker: every chunk finds exactly one copy in its worker's store
        from fundarb.sweeps.distributed import map_chunks

        def probe(market, chunk, opts):
            from distributed import get_worker

            w = get_worker()
            return w.address, sum(type(v).__name__ == "MarketData" for v in w.data.values()), len(market.index)

        seen = map_chunks(m, [[i] for i in range(8)], {}, scheduler=client, run=probe)
        assert {n for _, n, _ in seen} == {1} and {b for _, _, b in seen} == {len(m.index)}
        assert len({a for a, _, _ in seen}) == 2
    pd.testing.assert_frame_equal(rot.table, fa.sweep(m, fa.TopNRotation(), {"n": [1, 2, 3]}).table)


def test_distributed_walk_forward_equals_local(cluster):
    m = fa.demo_market(days=200)
    grid = {"window": ["3d", "7d"], "entry": [0.05, 0.1]}
    local = fa.walk_forward(m, fa.FundingCarry(), grid, train="100d", test="50d")
    remote = fa.walk_forward(m, fa.FundingCarry(), grid, train="100d", test="50d",
                             scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(remote.folds, local.folds)
    assert remote.stats == local.stats


def test_unreachable_scheduler_is_a_clear_error(monkeypatch, tmp_path, capsys):
    import socket

    from fundarb.cli import main
    from fundarb.sweeps import distributed as dist

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT", 2.0)
    m = fa.demo_market(days=30)
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=f"no Dask scheduler answered at tcp://127.0.0.1:{port} within 2 s"):
        fa.sweep(m, fa.FundingCarry(), {"entry": [0.05, 0.1]}, scheduler=f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - t0 < 30
    with pytest.raises(ConfigError, match="not an address"):
        fa.sweep(m, fa.FundingCarry(), {"entry": [0.05]}, scheduler="nowhere")
    csv = tmp_path / "s.csv"
    assert main(["sweep", str(ROOT / "strategies" / "carry_7d.toml"), "--grid", "entry=0.05,0.1", "--csv", str(csv),
                 "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no Dask scheduler answered") and not csv.exists()
