"""``explain_volume``: each slice equal to ``explain`` of that slice, ``masked`` slices, chunks,
cancel, memory-mapped output, 2.5D and per-slice EG references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from explain_helpers import rel_l2

from napari_ctinterp.explain import (
    ExplainCancelled,
    ExplainOptions,
    explain,
    explain_volume,
    iter_explain,
    iter_explain_volume,
    volume_references,
)
from napari_ctinterp.model import Classifier, ModelCard, build

S = 48
KW = dict(methods=("BP", "IGB", "IGBW", "EG", "D"), variants=("plain", "SG", "SG2"), steps=4, samples=4,
          sg_samples=2, seed=7)


def _clf(**card) -> Classifier:
    c = ModelCard(architecture="resnet18", input_size=(S, S), output="sigmoid", **card)
    torch.manual_seed(0)
    return Classifier(build("resnet18", "sigmoid", in_channels=c.in_channels).eval(), c, torch.device("cpu"),
                      source="test")


@pytest.fixture(scope="module")
def vol() -> np.ndarray:
    return np.random.default_rng(1).uniform(-1000, 1000, (10, 56, 56)).astype(np.float32)


def test_each_slice_equals_explain_of_that_slice_in_shared_batches(vol):
    clf = _clf()
    refs = vol[[0, 5, 9]]
    res = explain_volume(clf, vol, slices=[2, 4, 7], references=refs, batch_size=5, **KW)
    assert res.slices == [2, 4, 7] and res.params["seed_per_slice"]
    for key, m in res.items():
        assert m.shape == vol.shape and m.dtype == np.float32
        assert np.isnan(m[[0, 1, 3, 5, 6, 8, 9]]).all()
    for k, t in zip([2, 4, 7], res.params["targets"]):
        one = explain(clf, vol[k], references=refs, target=t, **KW)
        for key in one:  # float32 noise only: the batches mix the slices' rows differently
            assert rel_l2(res[key][k], one[key]) < 1e-5, (k, key)


def test_chunks_and_per_slice_references_give_the_same_maps(vol, tmp_path):
    clf = _clf()
    kw = {**KW, "methods": ("BP", "EG"), "variants": ("plain", "SG")}
    whole = explain_volume(clf, vol, slices=range(3, 6), **kw)  # default: the volume's other slices
    assert whole.params["references"] == "the volume's other slices" and whole.params["chunk_slices"] >= 3
    tiny = explain_volume(clf, vol, slices=range(3, 6), memory_budget=1, out_dir=tmp_path, **kw)
    assert tiny.params["chunk_slices"] == 1 and isinstance(tiny["EG", "SG"], np.memmap)
    assert (tmp_path / "EG_SG.npy").exists()
    for key in whole:  # float32 noise only: a chunk's batches hold other slices' rows
        for k in range(3, 6):
            assert rel_l2(tiny[key][k], whole[key][k]) < 1e-5, (k, key)
    one = explain(clf, vol[4], references=volume_references(vol, 4), target=whole.params["targets"][1], **kw)
    assert rel_l2(whole["EG", "SG"][4], one["EG", "SG"]) < 1e-6


def test_masked_slices_and_bad_requests(vol):
    clf = _clf()
    mask = np.zeros(vol.shape, bool)
    mask[[1, 6], 10:20, 10:20] = True
    res = explain_volume(clf, vol, slices="masked", mask=mask, methods=("BP",), variants=("plain",))
    assert res.slices == [1, 6]
    assert np.isfinite(res["BP", "plain"][[1, 6]]).all() and np.isnan(res["BP", "plain"][0]).all()
    with pytest.raises(ValueError, match="needs mask"):
        explain_volume(clf, vol, slices="masked")
    with pytest.raises(IndexError, match="out of range"):
        explain_volume(clf, vol, slices=[3, 12])
    with pytest.raises(ValueError, match="fewer than 8 other slices"):
        explain_volume(clf, vol[:4], methods=("EG",), variants=("plain",))
    with pytest.raises(ValueError, match="volume"):
        explain_volume(clf, vol[0])


def test_cancel_between_batches_returns_nothing(vol):
    clf = _clf()
    calls = []

    def stop(done, total, phase):
        calls.append((done, total))
        return done < total // 3

    with pytest.raises(ExplainCancelled):
        explain_volume(clf, vol, methods=("BP", "IGB"), variants=("plain", "SG"), steps=4, sg_samples=2,
                       batch_size=4, progress=stop)
    assert calls[-1][0] < calls[-1][1]
    assert len({t for _, t in calls}) == 1  # one total for the whole volume


def test_a_2_5d_model_takes_its_neighbours_from_the_volume(vol):
    w = [-1000, 1000]
    clf = _clf(channels=({"window": w, "slice_offset": -1}, {"window": w}, {"window": w, "slice_offset": 1}))
    res = explain_volume(clf, vol, slices=[0, 5], methods=("BP", "IGB"), variants=("plain",), steps=4)
    for k in (0, 5):
        one = explain(clf, vol, index=k, methods=("BP", "IGB"), variants=("plain",), steps=4)
        assert rel_l2(res["IGB", "plain"][k], one["IGB", "plain"]) < 1e-6


def test_a_64_slice_volume_runs_in_chunks_within_the_memory_budget(monkeypatch):
    import napari_ctinterp.explain.volume as volume_mod
    from napari_ctinterp.explain.plan import ExplainOptions
    from napari_ctinterp.explain.volume import bytes_per_slice

    clf = _clf()
    vol64 = np.random.default_rng(2).uniform(-1000, 1000, (64, 40, 40)).astype(np.float32)
    opts = dict(methods=("BP", "IGB"), variants=("plain", "SG"), steps=3, sg_samples=2)
    per = bytes_per_slice(clf, ExplainOptions(**opts))
    budget = 5 * per + per // 2  # room for five slices' accumulators
    chunks = []
    real = volume_mod.iter_run_slices

    def spy(clf_, xs, *a, **k):
        chunks.append(len(xs))
        return real(clf_, xs, *a, **k)

    monkeypatch.setattr(volume_mod, "iter_run_slices", spy)
    res = explain_volume(clf, vol64, memory_budget=budget, **opts)
    assert max(chunks) == 5 and sum(chunks) == 64 and res.params["chunk_slices"] == 5
    assert max(chunks) * per <= budget  # never more than the budget's accumulators at once
    assert all(m.shape == (64, 40, 40) and np.isfinite(m).all() for m in res.values())


def test_compact_output_holds_only_the_chosen_slices(vol):
    clf = _clf()
    kw = dict(methods=("BP", "IGB"), variants=("plain",), steps=3)
    full = explain_volume(clf, vol, slices=[2, 7], **kw)
    compact = explain_volume(clf, vol, slices=[2, 7], full=False, **kw)
    for key in full:
        assert compact[key].shape == (2, *vol.shape[1:])
        np.testing.assert_array_equal(compact[key], full[key][[2, 7]])
    bad = vol.copy()
    bad[9, 0, 0] = np.nan  # a NaN outside the chosen slices does not matter; inside, it is said
    explain_volume(clf, bad, slices=[2], **kw)
    with pytest.raises(ValueError, match=r"slice\(s\) \[9\] hold NaN"):
        explain_volume(clf, bad, slices=[8, 9], **kw)


def test_memory_stays_bounded_on_a_64_slice_volume_written_to_disk(tmp_path):
    """tracemalloc sees numpy's allocations: in RAM the results alone take 4 maps × 64 slices;
    memory-mapped, the peak stays within the memory budget (a chunk of slices at a time)."""
    import tracemalloc

    clf = _clf()
    vol64 = np.random.default_rng(3).uniform(-1000, 1000, (64, 96, 96)).astype(np.float32)
    opts = dict(methods=("BP", "IGB"), variants=("plain", "SG"), steps=2, sg_samples=2, memory_budget=1 << 20)
    results_bytes = 4 * vol64.nbytes
    peaks = {}
    for where in ("ram", "disk"):
        tracemalloc.start()
        res = explain_volume(clf, vol64, out_dir=tmp_path / "maps" if where == "disk" else None, **opts)
        peaks[where] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert all(m.shape == vol64.shape for m in res.values())
        if where == "disk":
            assert all(isinstance(m, np.memmap) for m in res.values())
        del res
    assert peaks["ram"] >= results_bytes  # the measurement sees the results when they are in RAM
    assert peaks["disk"] < opts["memory_budget"] < results_bytes / 8, peaks  # on disk: within the budget


def _partials(gen) -> tuple[list, object]:
    """The (done, partial) of each step that carries one, and the generator's result."""
    out = []
    while True:
        try:
            step = next(gen)
        except StopIteration as stop:
            return out, stop.value
        if step.partial is not None:
            out.append((step.done, step.partial))


@pytest.mark.parametrize("budget", [None, 1], ids=["one chunk", "a chunk per slice"])
def test_plain_maps_come_first_stage_by_stage_and_equal_the_final_ones(vol, budget):
    """BP and D (one evaluation each) of every slice first, then IGB's plain maps, then the
    SmoothGrad copies; each stage's partial result holds every plain map complete so far, exactly
    the final ones."""
    clf = _clf()
    opts = ExplainOptions(methods=("BP", "IGB", "D"), variants=("plain", "SG"), steps=4, sg_samples=2, seed=7)
    kw = {} if budget is None else {"memory_budget": budget}
    parts, res = _partials(iter_explain_volume(clf, vol, opts, slices=[2, 4, 7], full=False, plain_first=True, **kw))
    quick, ig = {("BP", "plain"), ("D", "plain")}, {("BP", "plain"), ("D", "plain"), ("IGB", "plain")}
    if budget is None:  # one plan: 3 slices × (BP + D), then 3 × 4 IG points, before any noisy copy
        assert [(d, set(p), p.slices) for d, p in parts] == [(6, quick, [2, 4, 7]), (18, ig, [2, 4, 7])]
    else:  # a chunk at a time: the slices reached so far
        assert [(d, set(p), p.slices) for d, p in parts] == [
            (2, quick, [2]), (6, ig, [2]), (20, quick, [2, 4]), (24, ig, [2, 4]), (38, quick, [2, 4, 7]),
            (42, ig, [2, 4, 7])]
    for _, p in parts:
        for key, m in p.items():
            rows = [res.slices.index(k) for k in p.slices]
            np.testing.assert_array_equal(m[rows], res[key][rows])
            assert np.isnan(m[len(p.slices):]).all()  # not reached yet
        assert p.params["targets"] == res.params["targets"][:len(p.slices)]
    # one slice through explain: the same stages
    parts, one = _partials(iter_explain(clf, vol[2], opts))
    assert [(d, sorted(p[0])) for d, p in parts] == [(2, sorted(quick)), (6, sorted(ig))]
    for _, p in parts:
        for key, m in p[0].items():
            np.testing.assert_array_equal(m, one[key])
