"""Architectures, cards and checkpoint formats: round trips, refusals, clear mismatch messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torchvision import models

from napari_ctinterp.model import CheckpointError, ModelCard, build, load, save_checkpoint
from napari_ctinterp.model.card import card_path_for


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    n = build("resnet18")
    with torch.no_grad():  # make BN statistics non-trivial so round trips test real numbers
        for m in n.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return n.eval()


def _card(**kw) -> ModelCard:
    return ModelCard(architecture="resnet18", input_size=(64, 64), **kw)


def test_architectures_match_torchvision_keys_and_split_relus():
    for arch in ("resnet18", "resnet50"):
        ours = build(arch)
        ref = getattr(models, arch)(weights=None)
        assert set(ours.state_dict()) == set(ref.state_dict()), "user checkpoints must load unchanged"
        relus = [m for m in ours.modules() if isinstance(m, torch.nn.ReLU)]
        assert all(not r.inplace for r in relus)
        assert len({id(r) for r in relus}) == len(relus) == (17 if arch == "resnet18" else 49)
    assert build("resnet50", "softmax2")(torch.rand(1, 1, 64, 64)).shape == (1, 2)
    with pytest.raises(ValueError, match="unknown architecture"):
        build("resnet9000")


@pytest.mark.parametrize("fmt,suffix", [("safetensors", ".safetensors"), ("state_dict", ".pt"),
                                        ("torchscript", ".ts")])
def test_round_trip_gives_the_same_logits(net, tmp_path, fmt, suffix):
    path, card = save_checkpoint(net, tmp_path / f"m{suffix}", _card(), fmt=fmt)
    assert card.weights_sha256 and card_path_for(path).exists()
    clf = load(path, device="cpu")
    x = torch.rand(3, 1, 64, 64)
    with torch.no_grad():
        ref = net(x)
    assert torch.allclose(clf.module(x), ref, atol=1e-5)
    assert load(path, device="cpu") is clf, "same source + device must return the cached object"


def test_pickled_model_refused_without_trust_flag(net, tmp_path):
    path = tmp_path / "full.pt"
    torch.save(net, path)
    _card().save(card_path_for(path))
    with pytest.raises(CheckpointError, match="pickled model.*runs arbitrary code.*trust_pickle=True"):
        load(path, device="cpu")
    clf = load(path, device="cpu", trust_pickle=True)
    assert isinstance(clf.module, torch.nn.Module)


def test_card_architecture_mismatch_names_the_keys(net, tmp_path):
    path, _ = save_checkpoint(net, tmp_path / "r18.safetensors", _card())
    bad = json.loads(card_path_for(path).read_text())
    bad["architecture"] = "resnet50"
    card_path_for(path).write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match=r"missing keys \(\d+\): .*layer1\.0\.conv3\.weight"):
        load(path, device="cpu")
    bad.update(architecture="resnet18", output="softmax2")
    card_path_for(path).write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match=r"shape mismatches \(2\): fc\.(bias|weight)"):
        load(path, device="cpu")


def test_missing_card_and_bad_card_messages(net, tmp_path):
    sd_path = tmp_path / "lonely.pt"
    torch.save(net.state_dict(), sd_path)
    with pytest.raises(CheckpointError, match="no model card for lonely.pt: expected lonely.json"):
        load(sd_path, device="cpu")
    card_path_for(sd_path).write_text(json.dumps({"architecture": "resnet18", "colour": "blue"}))
    with pytest.raises(ValueError, match=r"unknown keys \['colour'\]"):
        load(sd_path, device="cpu")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a tensor file at all")
    _card().save(card_path_for(garbage))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load(garbage, device="cpu")


def test_state_dict_wrapped_by_training_scripts_loads(net, tmp_path):
    path = tmp_path / "wrapped.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    _card().save(card_path_for(path))
    clf = load(path, device="cpu")
    x = torch.rand(1, 1, 64, 64)
    assert np.allclose(clf.module(x).numpy(), net(x).detach().numpy(), atol=1e-5)
