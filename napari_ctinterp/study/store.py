"""A study's results on disk: file names, atomic writes, which slices are finished, reading them back.

``<run dir>/slices/<safe slice id>.json`` holds one slice's result, written atomically when the
slice finishes, with the record of what it was computed from (``ref``). The runner writes them and
skips finished ones; ``results`` reads them back to make the tables.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from pathlib import Path

from .data import SliceRef


def _safe(name: str) -> str:
    """A slice id as a file name (and a Dask key): unsafe characters as ``_``, at most 120 characters."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and an atomic rename."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _ref_record(ref: SliceRef) -> dict:
    """What a slice's stored result was computed from (its label, file, slice and mask)."""
    rec = {k: v for k, v in asdict(ref).items() if k != "phase" or ref.source == "phantom"}
    for k, unset in (("marker", ""), ("contrast", -1), ("phantom", "")):  # added later: older records lack them
        if rec.get(k, unset) == unset:
            rec.pop(k, None)
    return rec


def _finished(path: Path, ref: SliceRef) -> bool:
    """Whether ``path`` holds this slice's result for the same inputs: a slice whose label, file,
    index or mask changed in labels.csv since (same config key) is computed again, not reused."""
    if not path.exists():
        return False
    try:
        stored = json.loads(path.read_text()).get("ref")
    except (OSError, ValueError):
        return False  # a damaged file: compute again
    return stored is None or stored == _ref_record(ref)  # results from before refs were stored: kept


def load_results(run_dir: Path, slice_ids: list[str] | None = None) -> list[dict]:
    """Per-slice result dicts in study order (or file order)."""
    files = {p.stem: p for p in (run_dir / "slices").glob("*.json")}
    order = [_safe(s) for s in slice_ids] if slice_ids else sorted(files)
    return [json.loads(files[k].read_text()) for k in order if k in files]
