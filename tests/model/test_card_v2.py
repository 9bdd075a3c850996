"""Model card version 2: any architecture, window channels, 2.5D, normalisation, N classes; v1
cards unchanged; bad cards and weights get messages that say what to fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_ctinterp.model import Classifier, ModelCard, build, load
from napari_ctinterp.model.checkpoints import CheckpointError, save_checkpoint

PHASES = ("no contrast", "arterial", "pulmonary", "venous")
WINDOWS = ({"window": [-1000, 400]}, {"window": [-160, 240]}, {"window": [-500, 1300]})


def test_a_v1_card_loads_and_writes_back_unchanged(tmp_path):
    v1 = {"architecture": "resnet18", "input_size": [64, 64], "hu_window": [-1000, 1000], "output": "logit",
          "class_names": ["no contrast", "contrast"], "training": {}, "accuracy": {}, "weights_sha256": "",
          "name": "x", "notes": ""}
    card = ModelCard.from_dict(v1)
    assert card.kind == "sigmoid" and card.n_logits == 1 and card.in_channels == 1 and not card.is_2_5d
    assert card.to_dict() == {**v1, "input_size": [64, 64], "hu_window": [-1000.0, 1000.0]}
    assert ModelCard.from_dict({**v1, "output": "softmax2"}).kind == "softmax"


def test_window_channels_and_normalisation_preprocess_as_by_hand():
    norm = {"mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}
    card = ModelCard(architecture="densenet121", input_size=(32, 32), output="softmax", class_names=PHASES,
                     channels=WINDOWS, normalize=norm)
    clf = Classifier(build("densenet121", "softmax", in_channels=3, n_logits=4), card, torch.device("cpu"))
    hu = np.random.default_rng(0).uniform(-1200, 1500, (32, 32)).astype(np.float32)
    x = clf.preprocess(hu)
    for c, (w, m, s) in enumerate(zip(WINDOWS, norm["mean"], norm["std"])):
        lo, hi = w["window"]
        want = (np.clip(hu, lo, hi) - lo) / (hi - lo)
        np.testing.assert_allclose(x[0, c].numpy(), (want - m) / s, rtol=1e-5, atol=1e-5)
    black = clf.baseline(0.0)[0, :, 0, 0].numpy()
    np.testing.assert_allclose(black, [(0 - m) / s for m, s in zip(norm["mean"], norm["std"])], rtol=1e-6)
    p = clf.predict_proba(hu)
    assert p.shape == (4,) and abs(p.sum() - 1) < 1e-5
    assert clf.predict_proba(np.stack([hu, hu])).shape == (2, 4)
    with pytest.raises(ValueError, match="predict_proba"):
        clf.predict(hu)


def test_a_2_5d_card_stacks_the_neighbouring_slices_and_repeats_the_edge():
    chans = ({"window": [-1000, 1000], "slice_offset": -1}, {"window": [-1000, 1000]},
             {"window": [-1000, 1000], "slice_offset": 1})
    card = ModelCard(input_size=(16, 16), channels=chans)
    clf = Classifier(build("resnet18", in_channels=3), card, torch.device("cpu"))
    vol = np.random.default_rng(1).uniform(-1000, 1000, (5, 16, 16)).astype(np.float32)
    unit = (vol + 1000) / 2000
    np.testing.assert_allclose(clf.preprocess(vol, index=2)[0].numpy(), unit[[1, 2, 3]], atol=1e-6)
    np.testing.assert_allclose(clf.preprocess(vol, index=0)[0].numpy(), unit[[0, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(clf.preprocess(vol)[4].numpy(), unit[[3, 4, 4]], atol=1e-6)
    with pytest.raises(ValueError, match="2.5D.*volume"):
        clf.preprocess(vol[0])
    # a NaN slice is an error only for the inputs made from it (the reviewer's quadratic, all-or-nothing check)
    vol[4] = np.nan
    clf.preprocess(vol, index=2)
    with pytest.raises(ValueError, match="256 NaN/inf pixels"):
        clf.preprocess(vol, index=3)
    checks = clf.domain_checks(vol, [0, 1, 2], batch_size=2)  # in two chunks
    assert len(checks) == 3 and all(c.in_domain is None for c in checks)  # no statistics: unknown


@pytest.mark.parametrize("card_kw, match", [
    (dict(architecture="resnet9000"), "unknown architecture 'resnet9000'"),
    (dict(output="softmax", class_names=("a",)), "at least 2"),
    (dict(output="logit", class_names=PHASES), "one-logit.*2 classes.*softmax"),
    (dict(channels=({"window": [5, 1]},)), r"channels\[0\] window"),
    (dict(channels=WINDOWS, normalize={"mean": [0.5], "std": [0.2]}), "one per channel"),
    (dict(positive_class="venous"), "positive_class 'venous'"),
])
def test_bad_cards_say_what_to_fix(card_kw, match):
    with pytest.raises(ValueError, match=match):
        ModelCard(input_size=(32, 32), **card_kw)


def test_weights_that_do_not_fit_the_card_name_the_layer_and_both_shapes(tmp_path):
    net = build("densenet121", "softmax", in_channels=3, n_logits=4)
    card = ModelCard(architecture="densenet121", input_size=(32, 32), output="softmax", class_names=PHASES,
                     channels=WINDOWS)
    path, _ = save_checkpoint(net, tmp_path / "m.safetensors", card)
    clf = load(path, device="cpu")
    assert clf.class_names == PHASES and clf.predict_proba(np.zeros((32, 32), np.float32)).shape == (4,)
    wrong = json.loads((tmp_path / "m.json").read_text())
    wrong["class_names"] = ["a", "b", "c"]
    (tmp_path / "m.json").write_text(json.dumps(wrong))
    with pytest.raises(CheckpointError, match=r"classifier\.weight: checkpoint \(4, 1024\) vs densenet121 \(3, 1024\)"):
        load(path, device="cpu")
    wrong["class_names"], wrong["channels"] = list(PHASES), [WINDOWS[0]]
    (tmp_path / "m.json").write_text(json.dumps(wrong))
    with pytest.raises(CheckpointError, match=r"features\.conv0\.weight: checkpoint \(64, 3, 7, 7\)"):
        load(path, device="cpu")


def test_a_torchscript_model_with_the_wrong_channel_count_is_refused_at_load(tmp_path):
    net = build("resnet18", in_channels=1)
    card = ModelCard(input_size=(32, 32))
    path, _ = save_checkpoint(net, tmp_path / "m.ts", card, fmt="torchscript")
    three = {**json.loads((tmp_path / "m.json").read_text()), "channels": [dict(w) for w in WINDOWS]}
    (tmp_path / "m.json").write_text(json.dumps(three))
    with pytest.raises(CheckpointError, match="does not run on the input its card describes.*3 channel"):
        load(path, device="cpu")


def _softmax_head_net(n: int) -> torch.nn.Module:
    return torch.nn.Sequential(build("densenet121", "softmax", in_channels=1, n_logits=n), torch.nn.Softmax(dim=1))


@pytest.mark.parametrize("output, match", [("multilabel", "multilabel card.*softmax over the classes"),
                                           ("softmax", "remove the network's final Softmax")])
def test_a_head_that_outputs_probabilities_is_refused_with_the_fix(tmp_path, output, match):
    card = ModelCard(architecture="torchscript", input_size=(64, 64), output=output,
                     class_names=("liver lesion", "kidney lesion", "bleed"))
    torch.manual_seed(0)
    path, _ = save_checkpoint(_softmax_head_net(3).eval(), tmp_path / "m.ts", card, fmt="torchscript")
    with pytest.raises(CheckpointError, match=match):
        load(path, device="cpu")


def test_a_multilabel_card_end_to_end_from_file(tmp_path):
    from captum.attr import IntegratedGradients

    from napari_ctinterp.explain import explain_targets

    card = ModelCard(architecture="densenet121", input_size=(64, 64), output="multilabel",
                     class_names=("aorta", "portal vein", "kidneys"),
                     channels=({"window": [-160, 240]}, {"window": [-1000, 1000]}))
    torch.manual_seed(1)
    net = build(card.architecture, card.output, in_channels=2, n_logits=3).eval()
    path, _ = save_checkpoint(net, tmp_path / "labels.safetensors", card)
    clf = load(path, device="cpu")
    hu = np.random.default_rng(2).uniform(-1000, 1000, (64, 64)).astype(np.float32)
    p = clf.predict_proba(hu)
    logits = clf.logits(clf.preprocess(hu))[0]
    assert p.shape == (3,)
    np.testing.assert_allclose(p, torch.sigmoid(logits).numpy(), atol=1e-6)  # independent sigmoids
    maps = explain_targets(clf, hu, ["kidneys", "aorta"], methods=("IGB",), variants=("plain",), steps=8)
    x = clf.preprocess(hu).contiguous()
    for name, m in maps.items():
        t = clf.class_names.index(name)
        ref = IntegratedGradients(lambda z: clf.module(z)).attribute(
            x, baselines=clf.baseline(0.0).expand_as(x), target=t, n_steps=8)[0].sum(0).detach().numpy()
        assert np.linalg.norm(m["IGB", "plain"] - ref) / np.linalg.norm(ref) < 1e-4, name
