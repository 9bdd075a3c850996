"""Fidelity of a 3D model's maps, where the answer is known: a model that looks only at one cube."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

from napari_ctinterp.metrics import fidelity, fidelity_grid, fidelity_many
from napari_ctinterp.metrics.fidelity import fidelity_inputs
from napari_ctinterp.metrics.fidelity_3d import gaussian_blur_3d
from napari_ctinterp.model import Classifier, ModelCard

S = 16
CUBE = (slice(5, 9), slice(6, 10), slice(4, 8))  # 64 of 4,096 voxels (1.6 %)
DECOY = (slice(10, 14), slice(1, 5), slice(9, 13))


class CubeModel(nn.Module):
    """logit = 40 × (mean input over CUBE − 0.5): class 1 iff the cube is bright."""

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.record = False

    def forward(self, x):
        if self.record:
            self.seen.append(x.clone())
        return 40 * (x[(slice(None), slice(None), *CUBE)].mean(dim=(2, 3, 4)) - 0.5)


def _card(**kw) -> ModelCard:
    return ModelCard(architecture="r3d_18", spatial_dims=3, input_size=(S, S, S), **kw)


@pytest.fixture(scope="module")
def toy():
    clf = Classifier(CubeModel(), _card(), torch.device("cpu"), source="cube")
    rng = np.random.default_rng(0)
    labels = np.array([1, 0] * 3)
    vols = rng.uniform(-800, 800, (6, S, S, S)).astype(np.float32)
    for v, y in zip(vols, labels):
        v[CUBE] = 700.0 if y else -700.0  # input 0.85 vs 0.15
    return clf, vols, labels


def _map_on(region, shape, seed):
    m = 1e-3 * np.random.default_rng(seed).random(shape)
    m[(slice(None), *region)] += 1.0
    return m.astype(np.float32)


def test_the_cube_map_gives_the_largest_F_and_a_map_elsewhere_about_zero(toy):
    clf, vols, labels = toy
    maps = {"cube": _map_on(CUBE, vols.shape, 1), "elsewhere": _map_on(DECOY, vols.shape, 2),
            "random": np.random.default_rng(3).random(vols.shape).astype(np.float32)}
    res = fidelity_many(clf, vols, maps, labels, batch_size=16, bootstrap=50)
    cube = res["cube"]
    assert cube.mif[0] == 1.0 and cube.lif[0] == 1.0
    assert cube.mif[1] == 0.0  # 2.5 % removed most-important-first: the whole cube is filled, every volume flips
    assert (cube.prob_mif[:, 1] < 0.01).all()  # the prediction drops as soon as the cube's voxels go
    assert cube.lif[-2] == 1.0  # 95 % removed least-important-first: the cube is untouched
    assert cube.F > 0.9 and cube.F_continuous > 0.9
    assert abs(res["elsewhere"].F) < 0.15 and abs(res["random"].F) < 0.15
    assert cube.F == max(r.F for r in res.values())
    alone = fidelity(clf, vols, maps["elsewhere"], labels, batch_size=5, bootstrap=50)
    assert np.array_equal(alone.pred_mif, res["elsewhere"].pred_mif) and alone.F == res["elsewhere"].F


class Counting3D(nn.Module):
    """A small Conv3d net that counts the volumes it sees."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv3d(1, 3, 3, padding=1)
        self.head = nn.Linear(3, 2)
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3, 4)))


def test_equals_the_protocol_written_out_voxel_by_voxel(toy):
    _, vols, labels = toy
    net = Counting3D()
    clf = Classifier(net, _card(output="softmax"), torch.device("cpu"), source="counting")
    rng = np.random.default_rng(4)
    maps = {"a": rng.random(vols[:4].shape).astype(np.float32), "b": rng.random(vols[:4].shape).astype(np.float32)}
    maps["a again"] = maps["a"].copy()
    net.seen = 0
    got = fidelity_many(clf, list(vols[:4]), maps, labels[:4], step=20, bootstrap=5, batch_size=3)
    n, p = 4, fidelity_grid(20)
    assert net.seen == n * 2 + 2 * 2 * (len(p) - 2) * n  # p = 0 / 100 once; "a again" shares a's volumes
    x = torch.cat([clf.preprocess(v) for v in vols[:4]])
    fills = torch.where(torch.as_tensor(labels[:4] == 0).view(-1, 1, 1, 1, 1), 1.0, 0.0).expand_as(x)
    for name in ("a", "b"):
        order = np.argsort(-maps[name].reshape(n, -1), axis=1, kind="stable")  # no ties in random floats
        probs = {}
        for curve in ("mif", "lif"):
            rows = []
            for pc in p:
                k = int(round(pc / 100 * S**3))
                removed = np.zeros((n, S**3), bool)
                for i in range(n):
                    removed[i, order[i, :k] if curve == "mif" else order[i, S**3 - k:]] = True
                rm = torch.as_tensor(removed.reshape(n, 1, S, S, S))
                rows.append(clf.proba(clf.logits(torch.where(rm, fills, x))).numpy())
            probs[curve] = np.stack(rows, axis=1)  # (N, P, classes)
        pred0 = probs["mif"][:, 0].argmax(1)
        for curve, norm in (("mif", got[name].prob_mif), ("lif", got[name].prob_lif)):
            want = probs[curve][np.arange(n), :, pred0] / probs["mif"][np.arange(n), :1, pred0]
            assert np.allclose(norm, want, atol=1e-5), (name, curve)
    assert np.array_equal(got["a"].prob_mif, got["a again"].prob_mif)


def test_a_cropped_and_padded_ct_maps_through_the_geometry_and_the_padding_stays():
    # CT 10 × 20 × 20 at (2, 1, 1) mm into 16³ at the same spacing: z padded 3 | 3, y and x cropped 2 | 2
    net = CubeModel()
    clf = Classifier(net, _card(spacing_mm=(2.0, 1.0, 1.0)), torch.device("cpu"), source="cube-crop")
    geo = clf.geometry((10, 20, 20), (2.0, 1.0, 1.0))
    assert geo.start == (-3, 2, 2)
    ct_cube = tuple(slice(s.start + o, s.stop + o) for s, o in zip(CUBE, geo.start))  # the cube on the CT's grid
    rng = np.random.default_rng(6)
    labels = np.array([0, 1, 0, 1])
    vols = rng.uniform(-800, 800, (4, 10, 20, 20)).astype(np.float32)
    for v, y in zip(vols, labels):
        v[ct_cube] = 700.0 if y else -700.0
    oracle = _map_on(ct_cube, vols.shape, 7)
    res = fidelity(clf, vols, oracle, labels, spacing_mm=(2.0, 1.0, 1.0), step=10, batch_size=8, bootstrap=20)
    assert res.mif[1] == 0.0 and res.lif[-2] == 1.0 and res.F > 0.85
    net.record, net.seen = True, []
    fidelity(clf, vols[:1], oracle[:1], labels[:1], spacing_mm=[(2.0, 1.0, 1.0)], step=50, batch_size=8,
             bootstrap=2)
    seen = torch.cat(net.seen)[:, 0]  # label 0: removed voxels are filled white (1); the padding is air (0)
    pad = torch.ones(S, S, S, dtype=torch.bool)
    pad[3:13] = False
    assert (seen[:, pad] == 0).all()  # the padding is never removed
    removed = sorted(int(c) for c in seen[:, ~pad].eq(1).sum(dim=1))
    assert removed == [0, 1280, 1280, 2560]  # p = 0, 50 (MiF, LiF), 100: percentages of the CT's 2,560 voxels


@pytest.mark.parametrize("fill", ["mean", "blur", "road"])
def test_class_neutral_fills_work_on_volumes(toy, fill):
    clf, vols, labels = toy
    oracle = _map_on(CUBE, vols[:2].shape, 8)
    res = fidelity(clf, vols[:2], oracle, labels[:2], fill=fill, step=20, bootstrap=10, batch_size=8)
    assert res.fill == fill and np.isfinite(res.prob_mif).all()
    assert res.lif[2] >= res.mif[2] and res.F >= 0


def test_3d_blur_is_a_separable_gaussian_with_reflected_edges():
    x = torch.as_tensor(np.random.default_rng(9).random((2, 1, 18, 20, 17)), dtype=torch.float64)
    ref = gaussian_filter(x.numpy(), sigma=(0, 0, 5, 5, 5), mode="mirror", truncate=3.0)  # 31 taps
    assert np.allclose(gaussian_blur_3d(x).numpy(), ref, atol=1e-12)


def test_the_tensor_level_protocol_and_errors(toy):
    clf, vols, labels = toy
    x = torch.cat([clf.preprocess(v) for v in vols[:2]])
    m = _map_on(CUBE, (2, S, S, S), 10)
    direct = fidelity_inputs(clf, x, {"m": m}, labels[:2], step=25, bootstrap=5, batch_size=4)["m"]
    via = fidelity(clf, vols[:2], m, labels[:2], step=25, bootstrap=5, batch_size=4)
    assert np.array_equal(direct.prob_mif, via.prob_mif) and direct.F == via.F
    with pytest.raises(ValueError, match="on the input grid"):
        fidelity_inputs(clf, x, {"m": m[:, :8]}, labels[:2])
    with pytest.raises(ValueError, match="no slice index"):
        fidelity(clf, vols[0], m[0], labels[:1], index=[3])
    with pytest.raises(ValueError, match="one per volume on its CT grid"):
        fidelity(clf, vols[:2], m[:, :-1], labels[:2])
    with pytest.raises(ValueError, match="one label per volume"):
        fidelity(clf, vols[:2], m, labels[:3])
    with pytest.raises(ValueError, match="a 2D slice is not a volume"):
        fidelity(clf, vols[0, 0], m[0, 0], labels[:1])
