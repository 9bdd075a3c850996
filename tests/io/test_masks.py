"""save_mask / load_mask: exact round trips in NIfTI and npz, clear errors."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_ctinterp.io import Mask, MaskIOError, load_mask, save_mask


def _labels(shape: tuple[int, ...], dtype: type = np.int32) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 4, shape).astype(dtype)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".npz"])
@pytest.mark.parametrize(
    ("shape", "spacing"), [((3, 20, 30), (2.5, 0.7, 0.6)), ((20, 30), (0.703125, 0.1))]
)
def test_round_trip(tmp_path: Path, suffix: str, shape: tuple[int, ...], spacing: tuple[float, ...]) -> None:
    labels = _labels(shape)
    meta = {"method": "IGB", "k": [1, 2]}
    origin = (-158.135803, -179.035797, -75.7)
    path = save_mask(labels, tmp_path / f"mask{suffix}", spacing_mm=spacing, origin=origin, meta=meta)
    assert path == tmp_path / f"mask{suffix}" and path.is_file()
    mask = load_mask(path)
    assert isinstance(mask, Mask)
    assert mask.labels.dtype == labels.dtype
    np.testing.assert_array_equal(mask.labels, labels)
    assert mask.spacing_mm == spacing  # exact, not float32-rounded
    assert mask.origin == origin and mask.meta == meta


@pytest.mark.parametrize("suffix", [".nii.gz", ".npz"])
def test_bool_mask_without_origin(tmp_path: Path, suffix: str) -> None:
    labels = _labels((16, 16)) > 1
    mask = load_mask(save_mask(labels, tmp_path / f"m{suffix}", spacing_mm=(1.0, 1.0)))
    assert mask.labels.dtype == np.uint8
    np.testing.assert_array_equal(mask.labels, labels)
    assert mask.origin is None and mask.meta == {}


def test_nifti_axes_follow_convention(tmp_path: Path) -> None:
    labels = np.zeros((3, 4, 5), dtype=np.int16)  # (z, y, x)
    labels[2, 1, 4] = 7
    save_mask(labels, tmp_path / "m.nii", spacing_mm=(3.0, 2.0, 1.0), origin=(10.0, 20.0, 30.0))
    img = nib.load(tmp_path / "m.nii")
    assert img.shape == (5, 4, 3)  # NIfTI (i, j, k) = (x, y, z)
    assert np.asanyarray(img.dataobj)[4, 1, 2] == 7
    assert img.header.get_zooms() == (1.0, 2.0, 3.0)
    np.testing.assert_allclose(img.affine[:3, 3], (-10.0, -20.0, 30.0))  # LPS origin -> RAS


def test_foreign_nifti_without_extension(tmp_path: Path) -> None:
    data = np.zeros((5, 4, 3), dtype=np.float32)  # (x, y, z), labels stored as float
    data[4, 1, 2] = 2
    affine = np.diag([-0.5, -0.75, 2.0, 1.0])
    affine[:3, 3] = (-1.0, -2.0, 3.0)
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "other.nii.gz")
    mask = load_mask(tmp_path / "other.nii.gz")
    assert mask.labels.shape == (3, 4, 5) and mask.labels[2, 1, 4] == 2
    assert np.issubdtype(mask.labels.dtype, np.integer)
    assert mask.spacing_mm == (2.0, 0.75, 0.5) and mask.origin == (1.0, 2.0, 3.0)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(MaskIOError, match="Unknown mask file type"):
        save_mask(_labels((4, 4)), tmp_path / "m.png", spacing_mm=(1, 1))
    with pytest.raises(MaskIOError, match="Unknown mask file type"):
        load_mask(tmp_path / "m.tif")
    with pytest.raises(FileNotFoundError, match="Mask file not found"):
        load_mask(tmp_path / "missing.npz")
    with pytest.raises(MaskIOError, match=r"\(H, W\) or \(Z, H, W\)"):
        save_mask(np.zeros((2, 2, 2, 2), int), tmp_path / "m.npz", spacing_mm=(1, 1, 1, 1))
    with pytest.raises(MaskIOError, match=r"\(H, W\) or \(Z, H, W\)"):
        save_mask(np.zeros(4, int), tmp_path / "m.npz", spacing_mm=(1,))
    with pytest.raises(MaskIOError, match=r"spacing_mm must be 2 positive numbers \(y, x\)"):
        save_mask(_labels((4, 4)), tmp_path / "m.npz", spacing_mm=(1, 1, 1))
    with pytest.raises(MaskIOError, match="integer or bool"):
        save_mask(np.zeros((4, 4)), tmp_path / "m.npz", spacing_mm=(1, 1))
    with pytest.raises(MaskIOError, match="JSON"):
        save_mask(_labels((4, 4)), tmp_path / "m.npz", spacing_mm=(1, 1), meta={"x": object()})
    np.savez(tmp_path / "other.npz", image=np.zeros((4, 4)))
    with pytest.raises(MaskIOError, match="lacks the array"):
        load_mask(tmp_path / "other.npz")
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 2), np.int16), np.eye(4)), tmp_path / "four.nii")
    with pytest.raises(MaskIOError, match="4-D"):
        load_mask(tmp_path / "four.nii")
