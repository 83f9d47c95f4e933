"""Numba kernels of the signal layer: per-symbol state machines over a ``(bars, symbols)`` array.

The kernels make the decision at each bar's *close* from that bar's filter value (which uses rows ≤ t). They
do not shift: the Python callers shift the result by one bar so that it executes at the next bar's open.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["carry_states_nb", "rotation_states_nb", "window_sums_nb"]

WEIGHT_EQUAL = 0
WEIGHT_FUNDING = 1


@njit(cache=True)
def window_sums_nb(x: np.ndarray, k: int) -> np.ndarray:
    """Sum of rows ``t−k+1 … t`` of each column, recomputed from the window alone (compensated, Neumaier).

    Each value depends only on the ``k`` values in its window, in order, never on the rows before it, so two
    windows holding the same values give the same sum whatever the history. Rows ``t < k−1`` sum what exists.
    """
    n, m = x.shape
    out = np.zeros((n, m))
    for j in range(m):
        for t in range(n):
            s = 0.0
            c = 0.0
            for i in range(max(0, t - k + 1), t + 1):
                v = x[i, j]
                u = s + v
                if abs(s) >= abs(v):
                    c += (s - u) + v
                else:
                    c += (v - u) + s
                s = u
            out[t, j] = s + c
    return out


@njit(cache=True)
def carry_states_nb(
    value: np.ndarray,
    allow_carry: bool,
    allow_reverse: bool,
    entry: float,
    exit_: float,
    min_hold: int,
) -> np.ndarray:
    """Direction to hold after each bar's close, per symbol (not shifted).

    Parameters
    ----------
    value
        ``(T, S)`` annualised funding filter at each bar's close; NaN where unknown.
    allow_carry, allow_reverse
        Which directions may be entered (carry: positive filter; reverse: negative filter).
    entry, exit_
        Enter when ``|value| ≥ entry`` with an allowed sign; leave when ``|value| < exit_`` or the sign no longer
        matches the position (a flip, or exactly 0).
    min_hold
        Bars a position must have been held before it may be left (0: no minimum).

    Returns
    -------
    ndarray
        ``(T, S)`` int8 in {-1, 0, +1}. A NaN value keeps the current state (no information, no trade).
    """
    n, m = value.shape
    out = np.zeros((n, m), dtype=np.int8)
    for j in range(m):
        pos = 0
        since = 0
        for t in range(n):
            v = value[t, j]
            if v == v:  # not NaN
                if pos != 0 and t - since >= min_hold:
                    if pos * v < exit_ or pos * v <= 0.0:
                        pos = 0
                if pos == 0:
                    if allow_carry and v > 0.0 and v >= entry:
                        pos = 1
                        since = t
                    elif allow_reverse and v < 0.0 and -v >= entry:
                        pos = -1
                        since = t
            out[t, j] = pos
    return out


@njit(cache=True)
def _fill_weights(score: np.ndarray, held: np.ndarray, weighting: int, max_weight: float, w: np.ndarray) -> None:
    """Weights of the held symbols (proportional to 1 or to ``score``), capped at ``max_weight`` by water-filling:
    a capped symbol's excess goes to the others in proportion; what no one can take stays as cash."""
    m = len(held)
    w[:] = 0.0
    free = np.zeros(m, dtype=np.bool_)
    for j in range(m):
        free[j] = held[j]
    remaining = 1.0
    for _ in range(m + 1):
        total = 0.0
        for j in range(m):
            if free[j]:
                total += 1.0 if weighting == WEIGHT_EQUAL else score[j]
        if total <= 0.0:
            break
        capped = False
        for j in range(m):
            if free[j]:
                share = remaining * (1.0 if weighting == WEIGHT_EQUAL else score[j]) / total
                if share > max_weight:
                    capped = True
        if not capped:
            for j in range(m):
                if free[j]:
                    w[j] = remaining * (1.0 if weighting == WEIGHT_EQUAL else score[j]) / total
            break
        for j in range(m):
            if free[j]:
                share = remaining * (1.0 if weighting == WEIGHT_EQUAL else score[j]) / total
                if share > max_weight:
                    w[j] = max_weight
                    free[j] = False
        used = 0.0
        for j in range(m):
            if held[j] and not free[j]:
                used += w[j]
        remaining = 1.0 - used
        if remaining <= 0.0:
            break


@njit(cache=True)
def rotation_states_nb(
    score: np.ndarray,
    sign: np.ndarray,
    n_hold: int,
    entry: float,
    exit_: float,
    hysteresis: float,
    min_gain: float,
    weighting: int,
    max_weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-N rotation at each bar's close (not shifted).

    Parameters
    ----------
    score
        ``(T, S)`` annualised funding in the direction the symbol would be traded (≥ 0 where ``sign ≠ 0``).
    sign
        ``(T, S)`` int8: the direction each symbol would be entered in at that bar (0: not eligible — NaN
        filter, or a sign the strategy does not trade).
    n_hold
        Maximum number of holdings.
    entry, exit_
        A symbol joins with ``score ≥ entry``; a holding leaves when ``score < exit_`` or its sign changes.
    hysteresis
        A challenger replaces the weakest holding only if its score is higher by at least this much …
    min_gain
        … and by more than this much (the switching cost expressed as an annualised rate over the horizon).
    weighting, max_weight
        ``WEIGHT_EQUAL`` or ``WEIGHT_FUNDING``; cap per symbol. Weights are recomputed only when the set of
        holdings (or a direction) changes, so an unchanged book is never resized.

    Returns
    -------
    dirs, weights
        ``(T, S)`` int8 directions and float64 fractions of capital (rows sum ≤ 1).
    """
    n, m = score.shape
    dirs = np.zeros((n, m), dtype=np.int8)
    weights = np.zeros((n, m))
    pos = np.zeros(m, dtype=np.int8)
    held = np.zeros(m, dtype=np.bool_)
    w = np.zeros(m)
    for t in range(n):
        changed = False
        # 1. holdings that no longer qualify leave
        for j in range(m):
            if pos[j] != 0 and (sign[t, j] != pos[j] or score[t, j] < exit_):
                pos[j] = 0
                changed = True
        count = 0
        for j in range(m):
            if pos[j] != 0:
                count += 1
        # 2. empty slots are filled by the best qualifying candidates
        while count < n_hold:
            best = -1
            for j in range(m):
                if pos[j] == 0 and sign[t, j] != 0 and score[t, j] >= entry:
                    if best < 0 or score[t, j] > score[t, best]:
                        best = j
            if best < 0:
                break
            pos[best] = sign[t, best]
            count += 1
            changed = True
        # 3. rotation: the best challenger replaces the weakest holding when it pays
        if count == n_hold:
            while True:
                best = -1
                for j in range(m):
                    if pos[j] == 0 and sign[t, j] != 0 and score[t, j] >= entry:
                        if best < 0 or score[t, j] > score[t, best]:
                            best = j
                weak = -1
                for j in range(m):
                    if pos[j] != 0:
                        if weak < 0 or score[t, j] < score[t, weak]:
                            weak = j
                if best < 0 or weak < 0:
                    break
                gain = score[t, best] - score[t, weak]
                if gain >= hysteresis and gain > min_gain:
                    pos[weak] = 0
                    pos[best] = sign[t, best]
                    changed = True
                else:
                    break
        if changed:
            for j in range(m):
                held[j] = pos[j] != 0
            _fill_weights(score[t], held, weighting, max_weight, w)
        for j in range(m):
            dirs[t, j] = pos[j]
            weights[t, j] = w[j] if pos[j] != 0 else 0.0
    return dirs, weights
