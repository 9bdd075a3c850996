"""Out-of-domain check: Mahalanobis distance of penultimate features (model.domain)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_ctinterp.model import ModelCard, build, load
from napari_ctinterp.model.checkpoints import save_checkpoint
from napari_ctinterp.model.domain import logits_and_features
from napari_ctinterp.model.domain_fitting import fit_and_save, phantom_inputs
from napari_ctinterp.phantom import make_slice


@pytest.fixture()
def small_model(tmp_path):
    card = ModelCard(architecture="resnet18", input_size=(64, 64), output="sigmoid")
    torch.manual_seed(0)
    weights, _ = save_checkpoint(build("resnet18", "sigmoid"), tmp_path / "small.safetensors", card)
    return weights


def test_without_statistics_the_answer_is_unknown_never_in_domain(small_model):
    clf = load(small_model, device="cpu")
    check = clf.domain_check(make_slice(1, size=64).hu)
    assert check.in_domain is None and check.label == "unknown" and np.isnan(check.score)
    assert "ctinterp fit-domain" in check.reason


def test_features_come_from_the_same_forward_pass_as_the_logits(small_model):
    clf = load(small_model, device="cpu")
    x = clf.preprocess(np.stack([make_slice(s, size=64).hu for s in (1, 2, 3)]))
    logits, feats = logits_and_features(clf, x)
    torch.testing.assert_close(logits, clf.logits(x))
    assert feats.shape == (3, 512)  # the input of resnet18's fc


def test_a_batch_retried_after_out_of_memory_keeps_the_features_aligned(small_model):
    from napari_ctinterp.model.domain import logits_and_layer_features

    clf = load(small_model, device="cpu")
    x = clf.preprocess(np.stack([make_slice(s, size=64).hu for s in range(6)]))
    layers = ("layer1", "layer3", "head")
    want_logits, want = logits_and_layer_features(clf, x, layers, batch_size=4)
    failed = []

    def fail_once(_m, _a, out):  # layer1's hook has fired already when layer2 runs out of memory
        if len(out) == 4 and not failed:
            failed.append(True)
            raise RuntimeError("CUDA out of memory (simulated)")

    handle = clf.module.layer2.register_forward_hook(fail_once)
    try:
        logits, got = logits_and_layer_features(clf, x, layers, batch_size=4)
    finally:
        handle.remove()
    assert failed  # the first batch of 4 failed and was retried as two batches of 2
    torch.testing.assert_close(logits, want_logits)
    for a, b in zip(got, want):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)


def test_fit_writes_the_card_and_flags_what_is_unlike_the_training_slices(small_model, tmp_path):
    clf = load(small_model, device="cpu")
    x = phantom_inputs(clf, 80, seed=1)
    entry = fit_and_save(clf, x, seed=0, source="test")
    card = json.loads(small_model.with_suffix(".json").read_text())
    assert card["domain"]["detector"] == "mahalanobis-layers" and card["domain"]["threshold"] == entry["threshold"]
    # resnet18's stages at 64²: the stem (32²), layer1 … layer4 (16² … 2²) and the penultimate features
    # layer4's spatial mean is fc's input: not counted twice
    assert card["domain"]["layers"] == ["bn1", "layer1", "layer2", "layer3", "input of fc"]
    assert (tmp_path / card["domain"]["statistics"]).is_file() and card["domain"]["n_heldout"] == 16
    clf = load(small_model, device="cpu")  # the edited card: a new model
    fresh = np.stack([make_slice(50_000 + s, contrast=bool(s % 2)).hu for s in range(10)])
    inside = clf.domain_check(fresh)
    assert sum(c.in_domain for c in inside) >= 8
    noise = np.random.default_rng(0).uniform(-1000, 1000, (64, 64)).astype(np.float32)
    out = clf.domain_check(noise)
    assert out.in_domain is False and out.score > out.threshold and "unlike the model's training data" in out.reason


def test_statistics_that_do_not_match_the_card_are_unknown(small_model):
    clf = load(small_model, device="cpu")
    fit_and_save(clf, phantom_inputs(clf, 30, seed=2))
    stats = small_model.with_name("small.domain.npz")
    with np.load(stats) as z:
        arrays = dict(z)
    np.savez(stats, **{**arrays, "means_0": arrays["means_0"] * 2})
    check = load(small_model, device="cpu").domain_check(make_slice(3, size=64).hu)
    assert check.in_domain is None and "SHA-256" in check.reason


def test_a_network_without_a_linear_head_still_answers_and_the_check_is_unknown():
    from torch import nn

    from napari_ctinterp.model import Classifier

    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    clf = Classifier(net, ModelCard(architecture="resnet18", input_size=(32, 32), output="sigmoid"),
                     torch.device("cpu"), source="test")
    p, checks = clf.proba_and_domain(make_slice(4, size=64).hu)
    assert p.shape == (1, 2) and checks[0].in_domain is None and "nn.Linear" in checks[0].reason


def test_fit_folder_skips_a_non_ct_series_beside_the_training_ct(small_model, tmp_path):
    """A PET series next to the CT in a training folder is not training data: skipped with a
    warning, the CT slices are taken."""
    from napari_ctinterp.io import CTReadWarning, write_dicom_series
    from napari_ctinterp.model.domain_fitting import folder_inputs

    ct = np.stack([make_slice(s, size=64).hu for s in (1, 2, 3)])
    write_dicom_series(ct, tmp_path / "data" / "ct")
    write_dicom_series(ct[:2], tmp_path / "data" / "pet", modality="PT")
    clf = load(small_model, device="cpu")
    with pytest.warns(CTReadWarning, match="skipped series .*modality PT"):
        x = folder_inputs(clf, tmp_path / "data")
    assert x.shape == (3, 1, 64, 64)
