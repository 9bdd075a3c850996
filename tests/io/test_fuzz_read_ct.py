"""Fuzzed DICOM reader: mutated real CT files either read as a finite HU volume or raise CTReadError.

Mutations of pydicom's ``CT_small.dcm`` and of a 2-slice RLE series written by the plugin: flipped
bytes, truncation, an element set to a random value, a deleted element, an element re-encoded with
a wrong VR. Every case has a time limit (SIGALRM): a hang is a failure like a raw exception.

In CI: ``CTINTERP_FUZZ_CASES`` cases (default 500). The recorded run (docs/io.md) is
``python benchmarks/fuzz_read_ct.py --cases 2000``, which runs this test with more cases.
"""

from __future__ import annotations

import os
import signal
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
        ds[tag].VR = vr  # written with this VR, its value bytes unchanged
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001
    raise _Timeout(f"read_ct took more than {SECONDS_PER_CASE} s")


def read_case(sources: dict[str, bytes], folder: Path, source: str, mutation: tuple) -> str:
    """Write one mutated case into ``folder`` and read it: ``"read"``, ``"CTReadError"`` or
    ``"not writable"``; any other exception, a non-finite result or a hang raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about the invalid values it is asked to write
            data = _mutate(sources[source], mutation)
    except Exception:  # noqa: BLE001 - pydicom could not write this mutation: nothing to read
        return "not writable"
    folder.mkdir(parents=True)
    (folder / "a.dcm").write_bytes(data)
    if source == "rle_series":
        (folder / "b.dcm").write_bytes(sources["rle_other"])
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS_PER_CASE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CTReadWarning and pydicom's own warnings are allowed
            vol = read_ct(folder)
        assert np.isfinite(vol.hu).all(), f"{mutation}: non-finite HU returned"
        assert vol.hu.ndim == 3 and vol.hu.size > 0
        return "read"
    except CTReadError:
        return "CTReadError"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


SOURCES = st.sampled_from(["CT_small", "rle_series"])


@settings(max_examples=CASES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(source=SOURCES, mutation=MUTATIONS)
def test_mutated_ct_reads_finite_or_raises_ctreaderror(sources, tmp_path, source, mutation) -> None:
    OUTCOMES[read_case(sources, tmp_path / f"case{sum(OUTCOMES.values())}", source, mutation)] += 1
