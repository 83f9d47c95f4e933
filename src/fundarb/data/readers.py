"""Reading a table file of any supported format into a raw DataFrame (no validation here)."""

from __future__ import annotations

import gzip
import io
import json
import os
import zipfile

import pandas as pd

from fundarb.data.validate import require_file
from fundarb.errors import DataError

__all__ = ["TABLE_SUFFIXES", "read_raw"]

TABLE_SUFFIXES = (".feather", ".parquet", ".csv", ".csv.gz", ".json", ".json.gz", ".jsongz", ".zip")


def read_raw(
    path: str | os.PathLike[str], *, header: bool | None = None, names: list[str] | None = None
) -> pd.DataFrame:
    """Read a feather, parquet, CSV (optionally gzipped or in a ZIP) or freqtrade-JSON table.

    Parameters
    ----------
    path
        The file.
    header
        CSV only: whether the first row is a header; None detects it (a first row whose first field is not
        a number is a header).
    names
        CSV only: column names to use when the file has no header.
    """
    p = require_file(path)
    low = p.lower()
    try:
        if low.endswith(".feather"):
            return pd.read_feather(p)
        if low.endswith(".parquet"):
            return pd.read_parquet(p)
        if low.endswith((".json", ".json.gz", ".jsongz")):
            opener = gzip.open if low.endswith(("gz",)) else open
            with opener(p, "rt") as fh:
                data = json.load(fh)
            if isinstance(data, list) and data and isinstance(data[0], list):
                cols = names or ["date", "open", "high", "low", "close", "volume"][: len(data[0])]
                return pd.DataFrame(data, columns=cols)
            return pd.DataFrame(data)
        if low.endswith(".zip"):
            with zipfile.ZipFile(p) as zf:
                members = [n for n in zf.namelist() if n.lower().endswith(".csv")]
                if len(members) != 1:
                    raise DataError(f"ZIP archive must hold exactly one CSV file, found {members}", source=p)
                text = zf.read(members[0]).decode()
            return _read_csv_text(text, header=header, names=names, source=f"{p}!{members[0]}")
        if low.endswith((".csv", ".csv.gz", ".txt")):
            opener = gzip.open if low.endswith(".gz") else open
            with opener(p, "rt") as fh:
                text = fh.read()
            return _read_csv_text(text, header=header, names=names, source=p)
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read file: {exc}", source=p) from exc
    raise DataError(f"unknown file type; expected one of {', '.join(TABLE_SUFFIXES)}", source=p)


def _read_csv_text(text: str, *, header: bool | None, names: list[str] | None, source: str) -> pd.DataFrame:
    if not text.strip():
        raise DataError("file is empty", source=source)
    if header is None:
        first = text.lstrip().split("\n", 1)[0].split(",")[0].strip().strip('"')
        try:
            float(first)
            header = False
        except ValueError:
            header = True
    if header:
        return pd.read_csv(io.StringIO(text))
    return pd.read_csv(io.StringIO(text), header=None, names=names)
