"""Occlusion probe on the demo model and the phantom: occluding the blood pools removes the contrast."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from napari_ctinterp.metrics import OcclusionProbe, Prober, probe_occlusion
from napari_ctinterp.metrics.fidelity import fill_images
from napari_ctinterp.metrics.occlusion_probe import FILLS
from napari_ctinterp.model import load
from napari_ctinterp.phantom import make_slice


@pytest.fixture(scope="module")
def clf():
    return load("demo")


@pytest.fixture(scope="module")
def arterial():
    return make_slice(2024, contrast=True, phase="arterial", level=0.58)


@pytest.fixture(scope="module")
def prober(clf, arterial):
    return Prober(clf, arterial.hu)


def test_empty_region_is_the_baseline_exactly(clf, arterial, prober):
    res = prober.occlude(np.zeros(arterial.hu.shape, dtype=bool))
    assert res.occluded == res.baseline == prober.baseline
    assert res.fraction == 0.0 and all(d == 0.0 for d in res.delta)
    p = clf.predict(arterial.hu)
    assert res.baseline[1] == pytest.approx(p, abs=1e-6) and res.baseline[1] > 0.99
    assert res.label == 1 and res.class_names == ("no contrast", "contrast")
    assert dataclasses.is_dataclass(res) and isinstance(res, OcclusionProbe)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.fill = "mean"  # type: ignore[misc]


def test_occluding_the_blood_pools_removes_the_contrast(arterial, prober):
    region = ndi.binary_dilation(arterial.mask, iterations=2)
    res = prober.occlude(region)
    # Measured: P(contrast) 0.9999 → 0.0036 (label fill), 10.3 % of the input occluded.
    assert res.occluded[1] < 0.1 and res.delta[1] < -0.85
    assert res.occluded[0] == pytest.approx(1 - res.occluded[1])
    assert res.fraction == pytest.approx(region.mean(), abs=0.01)
    # The same area elsewhere (shifted off the heart) leaves the answer alone: measured 0.99997.
    elsewhere = prober.occlude(np.roll(region, 150, axis=1))
    assert elsewhere.occluded[1] > 0.9
    text = "\n".join(res.lines())
    assert "P(contrast) 1.000 → 0.00" in text and "(Δ −" in text and "% of the slice occluded" in text


def test_the_prober_is_the_one_shot_function(clf, arterial, prober):
    region = ndi.binary_dilation(arterial.mask, iterations=2)
    once = probe_occlusion(clf, arterial.hu, region, slice_index=3)
    again = prober.occlude(region)
    assert once.occluded == pytest.approx(again.occluded, abs=1e-6)
    assert once.slice_index == 3 and once.model == clf.card.short_hash


@pytest.mark.parametrize("fill", FILLS)
def test_every_fill_works(clf, arterial, fill):
    region = ndi.binary_dilation(arterial.mask, iterations=2)
    a = probe_occlusion(clf, arterial.hu, region, fill=fill, seed=1)
    b = probe_occlusion(clf, arterial.hu, region, fill=fill, seed=1)
    assert a.fill == fill and a.occluded == b.occluded  # seeded: ROAD's noise repeats
    assert all(0.0 <= v <= 1.0 for v in a.occluded) and sum(a.occluded) == pytest.approx(1.0)
    assert a.occluded != a.baseline
    # Measured P(contrast): label 0.004, mean 0.001, road 0.001 (filling the pools with tissue-like
    # values removes the contrast); blur 0.9986 keeps the bright pools' coarse intensity.
    if fill != "blur":
        assert a.occluded[1] < 0.1


def test_label_fill_follows_the_predicted_class_unless_given(clf, arterial):
    plain = make_slice(2024, contrast=False, phase="arterial", level=0.58)
    pr = Prober(clf, plain.hu)
    assert pr.label == 0 and pr.baseline[1] < 0.05
    # A no-contrast slice is filled with white (1): the pools painted white look like contrast.
    assert pr.occlude(plain.mask).occluded[1] > 0.9
    forced = Prober(clf, arterial.hu, label=0)
    assert forced.label == 0 and forced.occlude(arterial.mask).occluded[1] > 0.9


def test_fills_are_the_fidelity_protocols(clf, arterial):
    x = clf.preprocess(arterial.hu)
    black = fill_images(x, np.array([1]), "label", 0)
    assert torch.equal(black, torch.zeros_like(x))
    assert fill_images(x, np.array([1]), "road", 0) is None


def test_region_resizing_and_integer_masks(clf):
    small = make_slice(5, contrast=True, phase="arterial", level=0.58, size=128)  # upsampled to 256²
    pr = Prober(clf, small.hu)
    region = np.zeros((128, 128), dtype=np.uint8)
    region[32:64, 32:64] = 7  # any non-zero label occludes
    assert pr.occlude(region).fraction == pytest.approx(1 / 16)


def test_bad_inputs_are_clear_errors(clf, arterial, prober):
    with pytest.raises(ValueError, match=r"slice's shape \(512, 512\).*\(256, 256\)"):
        prober.occlude(np.zeros((256, 256), dtype=bool))
    with pytest.raises(ValueError, match="slice's shape"):
        prober.occlude(np.zeros((2, 512, 512), dtype=bool))
    with pytest.raises(ValueError, match="unknown fill 'noise'"):
        Prober(clf, arterial.hu, fill="noise")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one slice"):
        Prober(clf, np.stack([arterial.hu] * 2))
    with pytest.raises(ValueError, match="label must be a class index 0…1"):
        Prober(clf, arterial.hu, label=2)


def _small_3d(arch="r3d_18", spacing=None):
    from napari_ctinterp.model import Classifier, ModelCard, build

    card = ModelCard(architecture=arch, spatial_dims=3, input_size=(16, 24, 24), output="softmax",
                     class_names=("a", "b"), name="my 3D net", spacing_mm=spacing)
    torch.manual_seed(0)
    return Classifier(build(arch, "softmax", spatial_dims=3), card, torch.device("cpu"))


def test_a_3d_model_probes_the_whole_volume_with_a_region_on_several_slices():
    clf = _small_3d()
    vol = np.random.default_rng(0).uniform(-1000, 1000, (16, 24, 24)).astype(np.float32)
    pr = Prober(clf, vol, fill="mean")
    assert pr.volume and pr.baseline == pytest.approx(tuple(clf.predict_proba(vol)), abs=1e-6)
    empty = pr.occlude(np.zeros(vol.shape, bool))
    assert empty.occluded == empty.baseline and empty.fraction == 0.0 and empty.painted_slices == ()
    region = np.zeros(vol.shape, np.uint8)
    region[4:9, 6:18, 6:18] = 3  # a block over five slices, any label
    res = pr.occlude(region)
    # at the input size the region is the input: one forward of the volume with the block at its mean
    x = clf.preprocess(vol)
    filled = torch.where(torch.as_tensor(region != 0)[None, None], x.mean(), x)
    want = clf.proba(clf.logits(filled))[0].numpy()
    assert res.occluded == pytest.approx(tuple(want), abs=1e-5) and res.occluded != res.baseline
    assert res.fraction == pytest.approx((region != 0).mean()) and res.painted_slices == (4, 5, 6, 7, 8)
    assert res.volume and res.slice_index is None
    assert "% of the volume occluded, painted on slices 4–8 (fill: mean)" in "\n".join(res.lines())
    assert probe_occlusion(clf, vol, region, fill="mean").occluded == pytest.approx(res.occluded, abs=1e-6)


def test_a_3d_volume_larger_than_the_input_is_occluded_by_area_and_padding_is_not_counted():
    clf = _small_3d()
    vol = np.random.default_rng(1).uniform(-1000, 1000, (32, 48, 48)).astype(np.float32)  # halved on each axis
    pr = Prober(clf, vol)
    region = np.zeros(vol.shape, bool)
    region[:16] = True  # the first half of the slices: the first half of the input's depth
    assert pr.input_mask(region)[0, 0].float().mean(dim=(1, 2)).tolist() == [1.0] * 8 + [0.0] * 8
    assert pr.occlude(region).fraction == pytest.approx(0.5)
    cropped = Prober(_small_3d(spacing=(1.0, 1.0, 1.0)), vol[:12], spacing_mm=(1.0, 1.0, 1.0))  # 12 slices, padded
    full = cropped.occlude(np.ones((12, 48, 48), bool))
    assert full.fraction == pytest.approx(1.0)  # of the voxels that came from the CT, not of the padded input


def test_a_3d_model_refuses_a_single_slice_or_a_thin_volume_saying_what_to_open():
    clf = _small_3d()
    with pytest.raises(ValueError, match=r"my 3D net is a 3D model .*not one slice"):
        Prober(clf, np.zeros((24, 24), np.float32))
    with pytest.raises(ValueError, match=r"has 5 slice\(s\); this 3D model needs at least 8"):
        Prober(clf, np.zeros((5, 24, 24), np.float32))
    with pytest.raises(ValueError, match="no slice index"):
        Prober(clf, np.zeros((16, 24, 24), np.float32), slice_index=3)
    pr = Prober(clf, np.zeros((16, 24, 24), np.float32))
    with pytest.raises(ValueError, match=r"volume's shape \(16, 24, 24\)"):
        pr.occlude(np.zeros((24, 24), bool))
