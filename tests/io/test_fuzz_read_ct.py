"""Fuzzed DICOM reader: mutated real CT files either read as a finite HU volume or raise CTReadError.

Mutations of pydicom's ``CT_small.dcm`` and of a 2-slice RLE series written by the plugin: flipped
bytes, truncation, an element set to a random value, a deleted element, an element's bytes declared
with another VR. Every case has a time limit: a timer (SIGALRM, whose exception derives from
BaseException so that no ``except Exception`` in the reader swallows it) stops a hang, and the time
each case took is asserted, so a case that overran fails even if its timeout was caught.

In CI: ``CTINTERP_FUZZ_CASES`` cases (default 500). The recorded run (docs/io.md) is
``python benchmarks/fuzz_read_ct.py --cases 2000``, which runs this test with more cases.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.tag import Tag

from napari_ctinterp.io import CTReadError, read_ct, write_dicom_series

CASES = int(os.environ.get("CTINTERP_FUZZ_CASES", "500"))
SECONDS_PER_CASE = 10
#: Elements whose values decide how pixels become HU and where slices lie.
KEYWORDS = ["Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel",
            "RescaleSlope", "RescaleIntercept", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
            "SliceThickness", "NumberOfFrames", "Modality", "SOPClassUID", "SeriesInstanceUID",
            "PhotometricInterpretation", "PixelData", "RescaleType", "WindowCenter"]
VRS = ["US", "SS", "DS", "IS", "LO", "CS", "UI", "OB", "FD", "SH"]
OUTCOMES: Counter = Counter()


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, bytes]:
    """The real files mutated: pydicom's CT_small.dcm and one file of a 2-slice RLE series."""
    folder = tmp_path_factory.mktemp("fuzz_src")
    rng = np.random.default_rng(0)
    hu = rng.integers(-1000, 1500, (2, 48, 40)).astype(np.float32)
    files = write_dicom_series(hu, folder / "rle", transfer_syntax="rle")
    yield {"CT_small": Path(get_testdata_file("CT_small.dcm", download=False)).read_bytes(),
           "rle_series": Path(files[0]).read_bytes(), "rle_other": Path(files[1]).read_bytes()}
    if OUTCOMES:
        print(f"\nfuzzed read_ct over {sum(OUTCOMES.values())} cases: {dict(OUTCOMES)}")


def _values() -> st.SearchStrategy:
    return st.one_of(st.integers(-2**40, 2**40), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=12), st.binary(max_size=16), st.just(""),
                     st.lists(st.floats(-1e6, 1e6), max_size=7))


MUTATIONS = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                                        min_size=1, max_size=20)),
    st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("set"), st.sampled_from(KEYWORDS), _values()),
    st.tuples(st.just("delete"), st.sampled_from(KEYWORDS)),
    st.tuples(st.just("vr"), st.sampled_from(KEYWORDS), st.sampled_from(VRS)),
)


def _mutate(data: bytes, mutation: tuple) -> bytes:
    """Apply one mutation; element-level ones go through pydicom (raw values, no validation)."""
    kind = mutation[0]
    if kind == "flip":
        out = bytearray(data)
        for where, value in mutation[1]:
            out[int(where * len(out))] = value
        return bytes(out)
    if kind == "truncate":
        return data[: int(mutation[1] * len(data))]
    import io

    ds = pydicom.dcmread(io.BytesIO(data))
    keyword = mutation[1]
    tag = Tag(keyword)
    if kind == "delete":
        if keyword in ds:
            del ds[tag]
    else:
        old = ds.get(keyword)
        vr = mutation[2] if kind == "vr" else (ds[tag].VR if keyword in ds else "LO")
        value = mutation[2] if kind == "set" else old
        raw = value if isinstance(value, bytes) else str(value).encode("latin-1", "replace")
        if len(raw) % 2:
            raw += b" "
        ds[tag] = DataElement(tag, vr, raw, is_raw=False) if vr in ("OB",) else DataElement(tag, "UN", raw)
        ds[tag].VR = vr  # written with this VR (pydicom pads or re-encodes the bytes as it writes)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


class _Timeout(BaseException):
    """Raised by the timer: a BaseException, so the reader's ``except Exception`` cannot swallow it."""


def _alarm(signum, frame):  # noqa: ARG001
    raise _Timeout(f"read_ct took more than {SECONDS_PER_CASE} s")


def read_case(sources: dict[str, bytes], folder: Path, source: str, mutation: tuple) -> str:
    """Write one mutated case into ``folder`` (a new, empty folder) and read it: ``"read"``,
    ``"CTReadError"`` or ``"not writable"``; any other exception, a non-finite result or a case
    that takes more than :data:`SECONDS_PER_CASE` raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about the invalid values it is asked to write
            data = _mutate(sources[source], mutation)
    except Exception:  # noqa: BLE001 - pydicom could not write this mutation: nothing to read
        return "not writable"
    (folder / "a.dcm").write_bytes(data)
    if source == "rle_series":
        (folder / "b.dcm").write_bytes(sources["rle_other"])
    # pytest-timeout may run its own ITIMER_REAL: save it and give it back, less the time spent.
    old_handler = signal.signal(signal.SIGALRM, _alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, SECONDS_PER_CASE)
    start = time.monotonic()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CTReadWarning and pydicom's own warnings are allowed
            vol = read_ct(folder)
        assert np.isfinite(vol.hu).all(), f"{mutation}: non-finite HU returned"
        assert vol.hu.ndim == 3 and vol.hu.size > 0
        outcome = "read"
    except CTReadError:
        outcome = "CTReadError"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        elapsed = time.monotonic() - start
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay > 0:
            signal.setitimer(signal.ITIMER_REAL, max(old_delay - elapsed, 1e-3), old_interval)
    assert elapsed < SECONDS_PER_CASE, f"{source} {mutation}: read_ct took {elapsed:.1f} s (a hang)"
    return outcome


SOURCES = st.sampled_from(["CT_small", "rle_series"])


@settings(max_examples=CASES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(source=SOURCES, mutation=MUTATIONS)
def test_mutated_ct_reads_finite_or_raises_ctreaderror(sources, tmp_path, source, mutation) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # hypothesis reuses tmp_path across examples and shrinks
    OUTCOMES[read_case(sources, folder, source, mutation)] += 1


@pytest.mark.parametrize("swallow", [Exception, BaseException])
def test_the_hang_check_fails_a_slow_case_even_when_the_reader_catches_everything(
        sources, tmp_path, monkeypatch, swallow) -> None:
    """The time limit is real: a reader that hangs fails the case, whether its ``except`` lets the
    timer's exception through (it derives from BaseException) or swallows it (elapsed time)."""
    import sys

    module = sys.modules[__name__]

    def slow_reader(folder):  # noqa: ARG001
        try:
            time.sleep(3)
        except swallow:
            time.sleep(0.5)
            raise CTReadError("turned into a CTReadError") from None

    monkeypatch.setattr(module, "SECONDS_PER_CASE", 1)
    monkeypatch.setattr(module, "read_ct", slow_reader)
    with pytest.raises((_Timeout, AssertionError), match="took"):
        read_case(sources, tmp_path, "CT_small", ("truncate", 0.99))
