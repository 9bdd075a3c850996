"""The out-of-domain check of a 3D model: the same detector on its 3D stages, fitted on volumes
(``ctinterp fit-domain --data DIR`` of series / .npy volumes), one verdict per volume."""

from __future__ import annotations

import json

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from napari_ctinterp.cli import main
from napari_ctinterp.model import ModelCard, build, load
from napari_ctinterp.model.checkpoints import save_checkpoint


def _smooth(seed: int) -> np.ndarray:
    """A body-like volume: smooth soft tissue (≈ 40 HU) in air, a little noise."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:16, :40, :40]
    r = rng.uniform(12, 16)
    body = ((y - 20) ** 2 + (x - 20) ** 2) < r ** 2
    vol = np.where(body, 40.0 + gaussian_filter(rng.normal(0, 60, (16, 40, 40)), 2), -1000.0)
    return (vol + rng.normal(0, 10, vol.shape)).astype(np.float32)


def test_fit_domain_on_volumes_flags_a_volume_unlike_them(tmp_path):
    card = ModelCard(architecture="r3d_18", spatial_dims=3, input_size=(16, 24, 24), output="softmax",
                     class_names=("a", "b"))
    torch.manual_seed(0)
    weights, _ = save_checkpoint(build("r3d_18", "softmax", n_logits=2, spatial_dims=3), tmp_path / "m3.safetensors",
                                 card)
    data = tmp_path / "train"
    data.mkdir()
    for s in range(30):
        np.save(data / f"v{s:02d}.npy", _smooth(s))
    clf = load(weights, device="cpu")
    assert clf.domain_check(_smooth(99)).label == "unknown"  # no statistics yet: never "in domain"
    assert main(["fit-domain", "--model", str(weights), "--data", str(data), "--device", "cpu"]) == 0
    entry = json.loads(weights.with_suffix(".json").read_text())["domain"]
    assert entry["n_fit"] + entry["n_heldout"] == 30 and entry["layers"][-1] == "input of fc"
    assert all(layer.startswith(("stem", "layer")) for layer in entry["layers"][:-1])  # 3D stages
    clf = load(weights, device="cpu")
    fresh = [clf.domain_check(_smooth(1000 + s)) for s in range(6)]
    assert sum(bool(c.in_domain) for c in fresh) >= 5, [c.score for c in fresh]
    noise = np.random.default_rng(0).uniform(-1000, 1000, (16, 40, 40)).astype(np.float32)
    out = clf.domain_check(noise)
    assert out.in_domain is False and out.score > out.threshold
