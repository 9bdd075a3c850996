"""Slices of a series named by text: the Explain widget's slice range and labels.csv's ``slices``."""

from __future__ import annotations


def parse_slices(text: str, n: int) -> list[int]:
    """``"a:b"`` (both included), ``"a,b,c"``, ``"k"`` or ``"all"`` → sorted slice indices of a
    volume of ``n`` slices (the Explain widget's slice range and labels.csv's ``slices``)."""
    t = text.strip().lower()
    try:
        if t == "all":
            out = list(range(n))
        elif ":" in t:
            a, b = (int(v) for v in t.split(":"))
            out = list(range(a, b + 1))
        else:
            out = sorted({int(v) for v in t.split(",") if v.strip()})
    except ValueError:
        raise ValueError(f"slices {text!r}: write a:b (e.g. 10:20), a list (3,7,9) or all") from None
    if not out:
        raise ValueError("no slice given: write a:b (e.g. 10:20), a list (3,7,9) or all")
    bad = [k for k in out if not 0 <= k < n]
    if bad:
        raise ValueError(f"slices {text!r}: {bad[:5]} outside the volume's slices 0…{n - 1}")
    return out
