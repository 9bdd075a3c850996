"""The Explain job of a 3D model (``jobs.iter_explain_3d``) on a random MONAI DenseNet: the maps are
``explain.explain``'s, the plain maps come first as partial results, progress adds up, bad volumes
and EG without references are said; the time estimate of a model not yet run is guessed by voxels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_ctinterp.explain import ExplainOptions, explain
from napari_ctinterp.jobs import (
    ExplainedVolume,
    cost_key,
    estimate_text,
    explain_3d,
    guessed_unit_cost,
    iter_explain_3d,
    job_units_3d,
    record_run,
    xrai_3d_available,
)
from napari_ctinterp.model import Classifier, ModelCard, build

ARGS = {"init_features": 16, "growth_rate": 8, "block_config": [2, 2]}


@pytest.fixture(scope="module")
def dense():
    card = ModelCard(architecture="monai.DenseNet", architecture_args=ARGS, spatial_dims=3, input_size=(16, 24, 24),
                     spacing_mm=(3.0, 12.0, 12.0), output="softmax", class_names=("a", "b", "c"), name="dense 3D")
    torch.manual_seed(4)
    net = build("monai.DenseNet", "softmax", in_channels=1, n_logits=3, spatial_dims=3, architecture_args=ARGS)
    return Classifier(net, card, torch.device("cpu"), source="test")


@pytest.fixture(scope="module")
def volume():
    from napari_ctinterp.phantom import make_volume

    v = make_volume(2, contrast=True, phase="arterial", n_slices=20, spacing_mm=2.5, size=64)
    return v.hu, v.spacing_mm



def _drain(gen):
    """Every step a job yields, and its result."""
    steps = []
    try:
        while True:
            steps.append(next(gen))
    except StopIteration as stop:
        return steps, stop.value

def test_the_job_gives_explain_s_maps_with_the_plain_maps_first(dense, volume):
    hu, spacing = volume
    opts = ExplainOptions(methods=("BP", "IGB"), variants=("plain", "SG"), steps=4, sg_samples=2)
    steps, result = _drain(iter_explain_3d(dense, hu, opts, spacing_mm=spacing, target="c"))
    assert isinstance(result, ExplainedVolume) and list(result.maps) == [None] and result.note == ""
    total = job_units_3d(opts, dense.card.input_size)
    assert total == 1 + 4 + 2 * (1 + 4) and {s.total for s in steps} == {total} and steps[-1].done == total
    partial = [s.partial for s in steps if s.partial is not None]
    assert partial and all(isinstance(p, ExplainedVolume) for p in partial)
    assert all(v == "plain" for p in partial for _, v in p.maps[None])  # plain maps only, before SmoothGrad
    want = explain(dense, hu, opts, spacing_mm=spacing, target="c")
    got = result.volume_maps
    assert sorted(got) == sorted(want) and all(got[k].shape == hu.shape for k in got)
    for k in want:
        assert np.allclose(got[k], want[k], atol=1e-6), k
    assert got.params["target_name"] == "c" and got.params["outside_voxels"] > 0
    check = dense.domain_check(hu, spacing_mm=spacing)
    assert result.domain[None].in_domain is check.in_domain is None  # no statistics in this card: "unknown"
    assert result.spacing_mm == pytest.approx(spacing)


def test_bad_volumes_and_eg_without_references_are_said(dense, volume, monkeypatch):
    hu, spacing = volume
    with pytest.raises(ValueError, match="dense 3D is a 3D model .*not one slice"):
        explain_3d(dense, hu[0], ExplainOptions(methods=("BP",), variants=("plain",)), spacing_mm=spacing)
    with pytest.raises(ValueError, match=r"has 4 slice\(s\); this 3D model needs at least 8"):
        explain_3d(dense, hu[:4], ExplainOptions(methods=("BP",), variants=("plain",)), spacing_mm=spacing)
    with pytest.raises(ValueError, match="pass the CT's spacing"):
        explain_3d(dense, hu, ExplainOptions(methods=("BP",), variants=("plain",)))
    holed = hu.copy()
    holed[3] = np.nan
    with pytest.raises(ValueError, match="NaN/inf voxels"):
        explain_3d(dense, holed, ExplainOptions(methods=("BP",), variants=("plain",)), spacing_mm=spacing)
    with pytest.raises(ValueError, match="EG skipped: this 3D model has no reference volumes"):
        explain_3d(dense, hu, ExplainOptions(methods=("EG",), variants=("plain",)), spacing_mm=spacing)
    res = explain_3d(dense, hu, ExplainOptions(methods=("EG", "BP"), variants=("plain",)), spacing_mm=spacing)
    assert list(res.volume_maps) == [("BP", "plain")] and res.note.startswith("EG skipped")
    import napari_ctinterp.jobs.explain_volume_3d as job

    monkeypatch.setattr(job, "xrai_3d_available", lambda: False)  # an xrai.segment that takes no volume
    with pytest.raises(ValueError, match="3D XRAI"):
        explain_3d(dense, hu, ExplainOptions(methods=("BP",), variants=("plain",)), spacing_mm=spacing, xrai="fast")


def test_xrai_of_a_3d_map_ranks_supervoxels_over_the_volume(dense, volume):
    from napari_ctinterp.xrai import region_map, segment

    assert xrai_3d_available()  # xrai.segment(volume, spacing_mm=...) gives 3D supervoxels
    hu, spacing = volume
    opts = ExplainOptions(methods=("BP",), variants=("plain",))
    steps, res = _drain(iter_explain_3d(dense, hu, opts, spacing_mm=spacing, xrai="fast"))
    assert steps[-1].phase == "XRAI" and steps[-1].done == steps[-1].total == job_units_3d(opts, (16, 24, 24), "fast")
    maps = res.volume_maps
    values, ranks = maps.regions["BP", "plain"]
    assert values.shape == ranks.shape == hu.shape
    outside = dense.geometry(hu.shape, spacing).outside
    assert outside.any()  # the card crops this CT: the voxels it never saw are in no region
    want = region_map(np.abs(maps["BP", "plain"]), segment(hu, spacing_mm=spacing), algorithm="fast", outside=outside)
    assert np.array_equal(ranks, want.ranks) and np.allclose(values, want.values, equal_nan=True)
    assert (ranks[outside] == 0).all() and (ranks[~outside] > 0).all()


def test_the_estimate_of_a_model_not_yet_run_is_guessed_by_input_voxels(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_CTINTERP_CACHE", str(tmp_path))
    key3d = cost_key("abc", "cpu", (32, 64, 64))
    assert guessed_unit_cost(key3d) is None  # nothing measured on this device
    record_run(cost_key("def", "cpu", (256, 256)), 100, 5.0)  # 50 ms per 65,536-pixel gradient
    record_run(cost_key("ghi", "cuda", (256, 256)), 100, 0.5)  # another device: not used
    guess = guessed_unit_cost(key3d)
    assert guess == pytest.approx(0.05 * 32 * 64 * 64 / (256 * 256))
    text = estimate_text(26, "gradients", 1, None, volume=True, guess=guess)
    assert text.startswith("≈ 26 gradients of the whole volume (3D model) · roughly ") and "a guess" in text, text
    assert estimate_text(26, "gradients", 1, 0.2, volume=True).endswith("(200 ms each, measured)")
