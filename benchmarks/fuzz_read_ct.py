"""Fuzz ``read_ct`` with many mutated real CT files and tally what happens (docs/io.md records a run).

Runs the cases of ``tests/io/test_fuzz_read_ct.py`` (same mutations, same per-case time limit) but
records every outcome instead of stopping at the first failure: ``read`` (a finite HU volume),
``CTReadError``, ``not writable`` (pydicom could not write the mutation), and anything else by
exception type with an example — each of those is a bug.

    python benchmarks/fuzz_read_ct.py --cases 2000
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("fuzz_cases", ROOT / "tests" / "io" / "test_fuzz_read_ct.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2000)
    args = ap.parse_args()
    mod = _module()
    tmp = Path(tempfile.mkdtemp(prefix="fuzz_read_ct_"))
    gen = mod.sources.__wrapped__(type("F", (), {"mktemp": lambda self, n: tmp / n})())  # the fixture's body
    (tmp / "fuzz_src").mkdir()
    sources = next(gen)
    outcomes: Counter = Counter()
    examples: dict[str, str] = {}
    slowest = [0.0, None]

    @settings(max_examples=args.cases, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(source=mod.SOURCES, mutation=mod.MUTATIONS)
    def one(source, mutation):
        n = sum(outcomes.values())
        t0 = time.perf_counter()
        try:
            outcome = mod.read_case(sources, Path(tempfile.mkdtemp(dir=tmp, prefix=f"case{n}_")), source, mutation)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - the point: tally what should never happen
            outcome = f"BUG {type(exc).__name__}"
            examples.setdefault(outcome, f"{source} {mutation!r}: {traceback.format_exception_only(exc)[-1].strip()}")
        dt = time.perf_counter() - t0
        if dt > slowest[0]:
            slowest[:] = [dt, (source, mutation)]
        outcomes[outcome] += 1

    t0 = time.perf_counter()
    one()
    total = time.perf_counter() - t0
    print(f"{sum(outcomes.values())} cases in {total:.0f} s; slowest case {slowest[0]:.2f} s")
    for k, v in outcomes.most_common():
        print(f"  {k}: {v}")
    for k, v in examples.items():
        print(f"  example of {k}: {v[:400]}")


if __name__ == "__main__":
    main()
