"""`MarketData`: the aligned panel of DESIGN.md §1 — a regular UTC bar grid × symbols, one 2-D array per field."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from fundarb.data.frames import SymbolFrames
from fundarb.durations import parse_date
from fundarb.errors import ConfigError, DataError, DataWarning, did_you_mean

__all__ = ["FIELDS", "IntervalSegment", "MarketData", "funding_intervals"]

PRICE_FIELDS = tuple(f"{leg}_{p}" for leg in ("spot", "perp", "mark") for p in ("open", "high", "low", "close"))
FIELDS = (*PRICE_FIELDS, "spot_volume", "perp_volume", "funding_rate", "funding_events", "borrow_rate", "mark_fallback")
"""Every field of a MarketData. ``funding_rate`` is the sum of the rates of the events in each bar (NaN when
none); ``funding_events`` counts them; ``borrow_rate`` is hourly (NaN: use the cost config's constant);
``mark_fallback`` is 1 where the mark price is missing and the perp's trade price stands in for it."""


@dataclass(frozen=True)
class IntervalSegment:
    """A run of funding events at one interval: events ``first`` … ``last`` spaced ``hours`` apart."""

    first: pd.Timestamp
    last: pd.Timestamp
    hours: float
    events: int


def funding_intervals(times: pd.DatetimeIndex) -> tuple[list[IntervalSegment], list[pd.Timestamp]]:
    """Split funding event times into runs of constant interval.

    The interval is never assumed: it is the spacing of consecutive events. A single spacing that is a whole
    multiple of the interval on both sides of it is read as missing events, not as a change of interval.

    Returns
    -------
    segments
        Runs of constant interval; a change of interval starts a new segment at its first event.
    missing
        Expected event times that are absent (inside a run).
    """
    t = pd.DatetimeIndex(times)
    if len(t) < 2:
        return ([IntervalSegment(t[0], t[0], float("nan"), 1)] if len(t) else []), []
    # hours between events, each event time taken to the nearest minute: exchanges stamp events a few
    # milliseconds (up to seconds) off the hour, and that jitter must not start a new segment
    d = np.diff(t.as_unit("ns").round("min").asi8) / 3.6e12
    step = d.copy()
    missing: list[pd.Timestamp] = []
    for i in range(len(d)):
        prev = step[i - 1] if i > 0 else (d[i + 1] if i + 1 < len(d) else d[i])
        nxt = d[i + 1] if i + 1 < len(d) else prev
        k = d[i] / prev if prev > 0 else 1.0
        if prev == nxt and k > 1.5 and abs(k - round(k)) < 1e-9:
            step[i] = prev
            missing.extend(t[i] + pd.Timedelta(hours=prev * j) for j in range(1, round(k)))
    segments: list[IntervalSegment] = []
    start = 0  # index of the first event of the current segment
    for i in range(1, len(step)):
        if step[i] != step[i - 1]:
            # event i+1 is the first one at the new spacing
            segments.append(IntervalSegment(t[start], t[i], float(step[i - 1]), i + 1 - start))
            start = i + 1
    segments.append(IntervalSegment(t[start], t[-1], float(step[-1]), len(t) - start))
    return segments, missing


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) positions of each run of True."""
    if not mask.any():
        return []
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    starts = np.flatnonzero(np.diff(m) == 1)
    ends = np.flatnonzero(np.diff(m) == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


@dataclass(frozen=True)
class SymbolCoverage:
    """Coverage of one symbol: active span, gaps, funding intervals."""

    symbol: str
    first_bar: int
    last_bar: int
    gaps: dict[str, list[tuple[pd.Timestamp, pd.Timestamp, int]]]
    intervals: list[IntervalSegment]
    missing_events: list[pd.Timestamp]
    mark_fallback_bars: int


@dataclass(frozen=True, eq=False)
class MarketData:
    """Aligned market data: a regular UTC bar grid × symbols.

    Build one with a loader (:func:`fundarb.load_freqtrade`, …) or :meth:`from_frames`.

    Attributes
    ----------
    index
        Bar-open times (UTC), regular at ``timeframe``.
    symbols
        Column names.
    arrays
        Field name → float64 array of shape ``(len(index), len(symbols))``; see :data:`FIELDS`.
    timeframe
        Bar length.
    events
        Symbol → its settled funding events (rate by event time), as loaded.
    label
        What the data is (``"demo (synthetic)"`` for the generated dataset).
    notes
        Loader notes and warnings (mark fallbacks, dropped duplicates).
    """

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    arrays: Mapping[str, np.ndarray]
    timeframe: pd.Timedelta
    events: Mapping[str, pd.Series]
    label: str = ""
    notes: tuple[str, ...] = ()
    synthetic: bool = False
    _extra: dict[object, object] = field(default_factory=dict, repr=False)
    """Memo of arrays derived from this (immutable) data, e.g. trailing funding sums; never part of equality."""

    def __post_init__(self) -> None:
        # every MarketData hands the kernels C-ordered, read-only float64 arrays (read-only *views*: the caller's
        # own arrays stay writable), so numba compiles one specialisation and reuses it from its cache
        frozen = {}
        for key, arr in self.arrays.items():
            a = np.ascontiguousarray(arr, dtype=np.float64)
            if a.flags.writeable:
                a = a.view()
                a.setflags(write=False)
            frozen[key] = a
        object.__setattr__(self, "arrays", frozen)

    def __setstate__(self, state: dict[str, object]) -> None:
        # pickling (e.g. to a Dask worker) makes arrays writable again; keep them read-only so the compiled
        # kernels see the same array types as in the process that made the data (no recompilation there)
        self.__dict__.update(state)
        self.__post_init__()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls,
        frames: Sequence[SymbolFrames],
        *,
        timeframe: str | pd.Timedelta = "1h",
        label: str = "",
        synthetic: bool = False,
    ) -> MarketData:
        """Align raw per-symbol tables onto one bar grid.

        Price tables finer than ``timeframe`` are resampled (open first, high max, low min, close last,
        volume summed); coarser ones are an error. Funding events are assigned to the bar whose
        ``[open, open + timeframe)`` holds them, several in one bar summed. Missing mark prices fall back to
        the perp's, with a note. Nothing else is filled.
        """
        tf = pd.Timedelta(timeframe)
        if tf <= pd.Timedelta(0):
            raise DataError(f"timeframe must be positive, got {timeframe!r}")
        if not frames:
            raise DataError("no symbols to load")
        notes: list[str] = []
        binned: list[dict[str, pd.DataFrame | pd.Series | None]] = []
        spans = []
        for fr in frames:
            b = {}
            for k in ("spot", "perp", "mark"):
                b[k], note = _to_grid(getattr(fr, k), tf, fr.sources.get(k, f"{fr.symbol} {k}"))
                if note:
                    notes.append(note)
            binned.append(b)
            spot, perp = b["spot"], b["perp"]
            assert spot is not None and perp is not None
            if len(fr.funding) == 0:
                raise DataError("no funding events", source=fr.sources.get("funding", f"{fr.symbol} funding"))
            fstart = fr.funding.index[0].floor(tf)
            # funding is known until the next expected event: the last one plus the interval then in force
            last_gap = fr.funding.index[-1] - fr.funding.index[-2] if len(fr.funding) > 1 else tf
            fend = (fr.funding.index[-1] + max(last_gap, tf) - pd.Timedelta(1, "ns")).floor(tf)
            lo = max(spot.index[0], perp.index[0], fstart)
            hi = min(spot.index[-1], perp.index[-1], fend)
            if spot.index[-1] < perp.index[0] or perp.index[-1] < spot.index[0]:
                raise DataError(
                    f"spot ({spot.index[0]} → {spot.index[-1]}) and perp ({perp.index[0]} → {perp.index[-1]}) "
                    "do not overlap in time",
                    source=f"{fr.sources.get('spot', 'spot')} / {fr.sources.get('perp', 'perp')}",
                )
            if lo > hi:
                raise DataError(
                    f"spot, perp and funding have no time in common (spot {spot.index[0]} → {spot.index[-1]}, "
                    f"perp {perp.index[0]} → {perp.index[-1]}, funding {fstart} → {fend})",
                    source=fr.sources.get("funding", fr.symbol),
                )
            spans.append((lo, hi))
            notes.extend(fr.report)
            notes.extend(_span_note(fr.symbol, lo, hi, tf, {"spot": (spot.index[0], spot.index[-1]),
                                                              "perp": (perp.index[0], perp.index[-1]),
                                                              "funding": (fstart, fend)}))
        start = min(s for s, _ in spans)
        end = max(e for _, e in spans)
        index = pd.date_range(start, end, freq=tf, name="time").as_unit("ns")
        n, m = len(index), len(frames)
        arrays = {f: np.full((n, m), np.nan) for f in FIELDS}
        events: dict[str, pd.Series] = {}
        origin = index[0].value
        step = tf.value
        for j, (fr, b) in enumerate(zip(frames, binned, strict=True)):
            lo, hi = spans[j]
            inside = (index >= lo) & (index <= hi)
            for leg in ("spot", "perp", "mark"):
                tab = b[leg]
                if tab is None:
                    continue
                tab = tab.reindex(index)
                for p in ("open", "high", "low", "close"):
                    arrays[f"{leg}_{p}"][:, j] = np.where(inside, tab[p].to_numpy(), np.nan)
                if leg != "mark":
                    arrays[f"{leg}_volume"][:, j] = np.where(inside, tab["volume"].to_numpy(), np.nan)
            no_mark = inside & np.isnan(arrays["mark_close"][:, j]) & ~np.isnan(arrays["perp_close"][:, j])
            if no_mark.any():
                for p in ("open", "high", "low", "close"):
                    arrays[f"mark_{p}"][no_mark, j] = arrays[f"perp_{p}"][no_mark, j]
            arrays["mark_fallback"][:, j] = np.where(inside, no_mark, np.nan)
            ev = fr.funding
            pos = (pd.DatetimeIndex(ev.index).as_unit("ns").asi8 - origin) // step
            ok = (pos >= 0) & (pos < n)
            pos = pos[ok]
            rate = np.zeros(n)
            count = np.zeros(n)
            np.add.at(rate, pos, ev.to_numpy()[ok])
            np.add.at(count, pos, 1.0)
            arrays["funding_rate"][:, j] = np.where((count > 0) & inside, rate, np.nan)
            arrays["funding_events"][:, j] = np.where(inside, count, np.nan)
            if fr.borrow is not None:
                br = fr.borrow.reindex(index, method="ffill")
                arrays["borrow_rate"][:, j] = np.where(inside, br.to_numpy(dtype=np.float64), np.nan)
            events[fr.symbol] = ev
        notes.extend(_mark_far_from_perp(arrays, index, frames))
        symbols = tuple(fr.symbol for fr in frames)
        if len(set(symbols)) != len(symbols):
            raise DataError(f"symbol listed twice: {symbols}")
        return cls(index=index, symbols=symbols, arrays=arrays, timeframe=tf, events=events,
                   label=label, notes=tuple(notes), synthetic=synthetic)

    # ------------------------------------------------------------------ access
    def __getitem__(self, name: str) -> pd.DataFrame:
        """A field as a DataFrame, UTC bar index × symbols (a read-only view of the array)."""
        if name not in self.arrays:
            raise KeyError(f"no field {name!r}{did_you_mean(name, FIELDS)}; fields: {', '.join(FIELDS)}")
        return pd.DataFrame(self.arrays[name], index=self.index, columns=pd.Index(self.symbols, name="symbol"),
                            copy=False)

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        label = f" {self.label!r}" if self.label else ""
        span = f"{self.index[0]} → {self.index[-1]}" if len(self.index) else "empty"
        return (f"<MarketData{label}: {len(self.symbols)} symbol(s) {list(self.symbols)}, "
                f"{len(self)} × {self.timeframe_label} bars, {span}>")

    @property
    def timeframe_label(self) -> str:
        """The bar size as people write it: ``"1h"``, ``"8h"``, ``"5m"``, ``"1d"``, ``"1w"``, ``"90s"``."""
        secs = int(self.timeframe.total_seconds())
        for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
            if secs >= size and secs % size == 0:
                return f"{secs // size}{unit}"
        return f"{self.timeframe.total_seconds():g}s"

    @property
    def bar_hours(self) -> float:
        """Bar length in hours."""
        return self.timeframe / pd.Timedelta(hours=1)

    @property
    def periods_per_year(self) -> float:
        """Bars per 365-day year (8,760 for 1h bars; 1,095 for 8h)."""
        return pd.Timedelta(days=365) / self.timeframe

    def symbol_position(self, symbol: str) -> int:
        """Column position of ``symbol``; accepts ``"BTC"`` for ``"BTC/USDT:USDT"`` and the reverse."""
        if symbol in self.symbols:
            return self.symbols.index(symbol)
        base = _base(symbol)
        hits = [i for i, s in enumerate(self.symbols) if _base(s) == base]
        if len(hits) == 1:
            return hits[0]
        raise DataError(f"symbol {symbol!r} is not in the data{did_you_mean(symbol, self.symbols)}; "
                        f"symbols: {', '.join(self.symbols)}", source=self.label or None)

    def select(self, symbols: str | Iterable[str]) -> MarketData:
        """A MarketData with only ``symbols`` (in that order); at least one, each once."""
        if isinstance(symbols, str):
            symbols = [symbols]
        if not isinstance(symbols, Iterable):
            raise ConfigError(f"select takes a symbol or a list of symbols, got {symbols!r}")
        symbols = list(symbols)
        bad = [s for s in symbols if not isinstance(s, str)]
        if bad:
            raise ConfigError(f"select takes symbol names (str), got {bad[0]!r}; symbols: {', '.join(self.symbols)}")
        pos = [self.symbol_position(s) for s in symbols]
        if not pos:
            raise ConfigError(f"select needs at least one symbol; symbols: {', '.join(self.symbols)}")
        if len(set(pos)) != len(pos):
            raise ConfigError(f"select lists a symbol twice: {list(symbols)}")
        arrays = {k: v[:, pos] for k, v in self.arrays.items()}  # made C-ordered and read-only by __post_init__
        names = tuple(self.symbols[p] for p in pos)
        return MarketData(index=self.index, symbols=names, arrays=arrays, timeframe=self.timeframe,
                          events={s: self.events[s] for s in names}, label=self.label, notes=self.notes,
                          synthetic=self.synthetic)

    def slice(self, start: object = None, end: object = None) -> MarketData:
        """Bars with ``start <= open time <= end`` (either may be None). Arrays are views, not copies.

        Naive times are UTC. An end written as a date (``"2023-12-31"``, a ``datetime.date``) includes that whole
        day, a month (``"2023-12"``) or a year (``"2023"``) the whole period, as pandas' string slicing does.
        """
        lo, hi = 0, len(self.index)
        if start is not None:
            t0, _ = parse_date(start, name="start")
            lo = int(self.index.searchsorted(t0, side="left"))
        if end is not None:
            t1, after = parse_date(end, name="end")
            hi = int(self.index.searchsorted(t1, side="right") if after is None
                     else self.index.searchsorted(after, side="left"))
        if start is not None and end is not None and t0 > (t1 if after is None else after - pd.Timedelta(1)):
            raise ConfigError(f"start {start} is after end {end}")
        if hi <= lo:
            raise DataError(f"no bars between {start} and {end}; the data covers {self.index[0]} → {self.index[-1]}",
                            source=self.label or None)
        arrays = {k: v[lo:hi] for k, v in self.arrays.items()}
        t0, t1 = self.index[lo], self.index[hi - 1] + self.timeframe
        events = {s: e[(e.index >= t0) & (e.index < t1)] for s, e in self.events.items()}
        return MarketData(index=self.index[lo:hi], symbols=self.symbols, arrays=arrays, timeframe=self.timeframe,
                          events=events, label=self.label, notes=self.notes, synthetic=self.synthetic)

    # ------------------------------------------------------------------ coverage
    @cached_property
    def coverage(self) -> dict[str, SymbolCoverage]:
        """Per symbol: active span (bar positions), gaps by leg, funding interval segments."""
        out = {}
        for j, s in enumerate(self.symbols):
            have = ~np.isnan(self.arrays["spot_close"][:, j]) | ~np.isnan(self.arrays["perp_close"][:, j])
            pos = np.flatnonzero(have)
            first, last = (int(pos[0]), int(pos[-1])) if len(pos) else (0, -1)
            gaps = {}
            for leg in ("spot", "perp", "mark"):
                miss = np.isnan(self.arrays[f"{leg}_close"][first:last + 1, j])
                gaps[leg] = [(self.index[first + a], self.index[first + b], b - a + 1) for a, b in _runs(miss)]
            segs, missing = funding_intervals(self.events[s].index)
            fallback = int(np.nansum(self.arrays["mark_fallback"][:, j]))
            out[s] = SymbolCoverage(s, first, last, gaps, segs, missing, fallback)
        return out

    @property
    def warnings(self) -> list[str]:
        """Loader notes, and where the perp price stands in for a missing mark price (DESIGN §1)."""
        out = list(self.notes)
        for j, s in enumerate(self.symbols):
            fb = self.arrays["mark_fallback"][:, j] == 1
            if fb.any():
                where = self.index[fb]
                out.append(f"{s}: mark price missing on {int(fb.sum())} bar(s) ({where[0]} → {where[-1]}); "
                           "the perp's trade price stands in for the mark there")
        return out

    def funding_intervals(self, symbol: str) -> list[IntervalSegment]:
        """The funding interval segments of ``symbol`` (a new segment wherever the interval changes)."""
        return self.coverage[self.symbols[self.symbol_position(symbol)]].intervals

    def active(self) -> np.ndarray:
        """Boolean ``(bars, symbols)``: inside each symbol's active span (DESIGN §1)."""
        out = np.zeros((len(self.index), len(self.symbols)), dtype=bool)
        for j, s in enumerate(self.symbols):
            c = self.coverage[s]
            out[c.first_bar:c.last_bar + 1, j] = True
        return out

    def describe(self) -> pd.DataFrame:
        """Coverage, gaps and funding intervals per symbol, one row each.

        ``funding_events`` and ``annualised_funding`` (a fraction) follow DESIGN §8 through
        :func:`fundarb.data.funding.funding_summary`, on the symbol's own events inside its active span;
        ``mean_per_event`` gives the mean rate per event in percent with its interval.
        """
        from fundarb.data.funding import funding_summary, symbol_events

        rows = []
        for s in self.symbols:
            c = self.coverage[s]
            fs = funding_summary(symbol_events(self, s))
            intervals = " → ".join(
                f"{seg.hours:g}h" + ("" if k == 0 else f" (from {seg.first:%Y-%m-%d %H:%M})")
                for k, seg in enumerate(c.intervals)
            )
            rows.append({
                "symbol": s,
                "start": self.index[c.first_bar] if c.last_bar >= 0 else pd.NaT,
                "end": self.index[c.last_bar] if c.last_bar >= 0 else pd.NaT,
                "bars": c.last_bar - c.first_bar + 1,
                "spot_gap_bars": sum(g[2] for g in c.gaps["spot"]),
                "perp_gap_bars": sum(g[2] for g in c.gaps["perp"]),
                "mark_gap_bars": sum(g[2] for g in c.gaps["mark"]),
                "funding_events": fs.events,
                "missing_events": len(c.missing_events),
                "mark_fallback_bars": c.mark_fallback_bars,
                "intervals": intervals,
                "annualised_funding": fs.annualised,
                "mean_per_event": fs.per_event,
                "synthetic": self.synthetic,
            })
        return pd.DataFrame(rows).set_index("symbol")


def _base(symbol: str) -> str:
    return symbol.split("/")[0].split("_")[0].split(":")[0].upper()


#: A mark open further than this from the perp's open on the same bar is reported (real data reaches 6.4%).
MARK_PERP_WARN = 0.05


def _span_note(symbol: str, lo: pd.Timestamp, hi: pd.Timestamp, tf: pd.Timedelta,
               legs: dict[str, tuple[pd.Timestamp, pd.Timestamp]]) -> list[str]:
    """A note when the span all legs share is under half of some leg's own span (that leg is mostly cut)."""
    common = hi - lo + tf
    cut = [f"{k} covers {a:%Y-%m-%d %H:%M} → {b:%Y-%m-%d %H:%M}" for k, (a, b) in legs.items()
           if (b - a + tf) > 2 * common]
    if not cut:
        return []
    return [f"{symbol}: spot, perp and funding overlap only {lo:%Y-%m-%d %H:%M} → {hi:%Y-%m-%d %H:%M} "
            f"({common / tf:.0f} bars), and only that span is used; {'; '.join(cut)}"]


def _mark_far_from_perp(arrays: Mapping[str, np.ndarray], index: pd.DatetimeIndex,
                        frames: Sequence[SymbolFrames]) -> list[str]:
    """Warn (DataWarning) where a real mark open is more than 5% from the perp's open on the same bar."""
    out = []
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.abs(arrays["mark_open"] / arrays["perp_open"] - 1.0)
    gap[~(arrays["mark_fallback"] == 0)] = np.nan
    for j, fr in enumerate(frames):
        g = gap[:, j]
        far = g > MARK_PERP_WARN
        if far.any():
            i = int(np.nanargmax(g))
            msg = (f"{fr.symbol}: mark and perp open differ by more than {MARK_PERP_WARN:.0%} on {int(far.sum())} "
                   f"bar(s), most on {index[i]} ({g[i]:.2%}: mark {arrays['mark_open'][i, j]:g}, perp "
                   f"{arrays['perp_open'][i, j]:g}); the mark decides liquidations — check "
                   f"{fr.sources.get('mark', 'the mark data')}")
            warnings.warn(msg, DataWarning, stacklevel=4)
            out.append(msg)
    return out


def _to_grid(tab: pd.DataFrame | None, tf: pd.Timedelta, source: str) -> tuple[pd.DataFrame | None, str | None]:
    """Put an OHLCV table on the ``tf`` grid (epoch-aligned bar opens), resampling finer data (with a note).

    The file's own bar size is its most common spacing; a spacing finer than that means rows of two bar sizes
    were spliced into one file, which no resampling can make right.
    """
    if tab is None or len(tab) == 0:
        return None, None
    idx = pd.DatetimeIndex(tab.index)
    ns = idx.as_unit("ns").asi8
    own = tf.value
    if len(ns) > 1:
        d = np.diff(ns)
        sizes, counts = np.unique(d, return_counts=True)
        own = int(sizes[np.argmax(counts)])
        if sizes[0] < own:
            i = int(np.flatnonzero(d < own)[0]) + 1
            raise DataError(f"two bar sizes in one file: most bars are {pd.Timedelta(own)} apart, but {idx[i]} is "
                            f"{pd.Timedelta(int(d[i - 1]))} after the bar before it ({int((d < own).sum())} such "
                            "spacing(s)); keep one bar size per file", source=source, column="time", value=idx[i])
        if own > tf.value:
            raise DataError(f"bars are {pd.Timedelta(own)} apart, coarser than the timeframe {tf}; "
                            "load with a coarser timeframe", source=source)
    off = ns % tf.value
    if not off.any():
        return tab, None
    misaligned = ns % own != 0
    if misaligned.any() or tf.value % own:
        i = int(np.flatnonzero(misaligned | (off != 0))[0])
        raise DataError(f"bar time {idx[i]} is not on the {tf} grid", source=source, column="time", row=i + 1,
                        value=idx[i])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        out = tab.resample(tf, origin="epoch", label="left", closed="left").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    return out.dropna(subset=["close"]), f"{source}: {pd.Timedelta(own)} bars resampled to {tf} bars"
