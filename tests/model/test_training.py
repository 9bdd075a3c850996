"""Training is deterministic by seed, keeps the best epoch, and the augmentations stay in range."""

from __future__ import annotations

import numpy as np
import torch

from napari_ctinterp.model import load
from napari_ctinterp.model.augment import augment
from napari_ctinterp.model.datasets import SEED_RANGES, folder_set, phantom_set, phantom_spec
from napari_ctinterp.model.training import TrainOptions, make_card, save_trained, train


def test_seed_ranges_are_disjoint_and_specs_balanced():
    spans = sorted(SEED_RANGES.values())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    specs = phantom_spec("test", 60, seed=0)
    assert sum(s["contrast"] for s in specs) == 30
    assert {s["phase"] for s in specs} == {"arterial", "pulmonary", "venous"}
    assert all(SEED_RANGES["test"][0] <= s["seed"] < SEED_RANGES["test"][1] for s in specs)
    assert phantom_spec("test", 60, seed=0) == specs


def test_augment_is_reproducible_and_in_range():
    x = torch.rand(4, 1, 32, 32)
    a = augment(x, (-1000, 1000), torch.Generator().manual_seed(3))
    b = augment(x, (-1000, 1000), torch.Generator().manual_seed(3))
    c = augment(x, (-1000, 1000), torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 1


def test_tiny_training_is_deterministic_and_round_trips(tmp_path):
    opts = TrainOptions(input_size=(48, 48), epochs=2, batch_size=8, seed=1, device="cpu")
    specs = phantom_spec("train", 16, seed=1)
    tr = phantom_set(specs, opts.hu_window, opts.input_size, phantom_size=96)
    val = phantom_set(phantom_spec("val", 8, seed=1), opts.hu_window, opts.input_size, phantom_size=96)
    net1, hist1 = train(opts, tr, val)
    net2, hist2 = train(opts, tr, val)
    for (k, v1), v2 in zip(net1.state_dict().items(), net2.state_dict().values()):
        assert torch.equal(v1, v2), k
    assert [h["val_accuracy"] for h in hist1] == [h["val_accuracy"] for h in hist2]
    card = make_card(opts, hist1, data="phantom", command="test", n_train=16, n_val=8)
    assert card.training["best_epoch"] in (1, 2) and card.accuracy["val_n"] == 8
    path, card = save_trained(net1, card, tmp_path / "tiny.safetensors", half=False)
    clf = load(path, device="cpu")
    assert np.allclose(clf.logits(val.x).numpy(), net1(val.x).detach().numpy(), atol=1e-5)


def test_user_folder_with_labels_csv(tmp_path):
    from napari_ctinterp.io import write_dicom_series
    from napari_ctinterp.phantom import make_slice

    for i, contrast in enumerate((True, False)):
        write_dicom_series([make_slice(i, contrast=contrast, size=64)], tmp_path / f"case{i}", seed=i)
    (tmp_path / "labels.csv").write_text("file,label\ncase0,contrast\ncase1,0\n")
    data = folder_set(tmp_path, tmp_path / "labels.csv", (-1000, 1000), (32, 32))
    assert data.x.shape == (2, 1, 32, 32) and data.y.tolist() == [1, 0]


def test_phase_specs_are_a_quarter_per_class():
    from napari_ctinterp.model.datasets import PHASE_CLASSES, label_of

    specs = phantom_spec("val", 80, seed=2, task="phase")
    labels = [label_of(s, "phase") for s in specs]
    assert [labels.count(c) for c in range(4)] == [20, 20, 20, 20]
    assert all(PHASE_CLASSES[label_of(s, "phase")] == s["phase"] for s in specs if s["contrast"])


def test_augment_per_window_converts_hu_per_channel():
    windows = [(-1350.0, 150.0), (-160.0, 240.0)]
    x = torch.zeros(3, 2, 16, 16)  # every channel at the bottom of its window
    from napari_ctinterp.model.augment import AugmentOptions

    flat = AugmentOptions(noise_hu=(0, 0), window_jitter_hu=0, rotate_deg=0, flip_lr=0, zoom=(0.5, 0.5), shift=0,
                          tissue_pad=1.0, tissue_pad_hu=(40.0, 40.0))
    out = augment(x, windows, torch.Generator().manual_seed(0), flat)
    corner = out[:, :, 0, 0]  # outside the zoomed-out field: soft tissue at 40 HU, seen through each window
    assert torch.allclose(corner[:, 0], torch.full((3,), (40 + 1350) / 1500), atol=1e-5)
    assert torch.allclose(corner[:, 1], torch.full((3,), (40 + 160) / 400), atol=1e-5)


def test_tiny_three_window_phase_training_writes_a_v2_card(tmp_path):
    from napari_ctinterp.model.datasets import PHASE_CLASSES

    windows = ((-1350.0, 150.0), (-160.0, 240.0), (-500.0, 1300.0))
    norm = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    opts = TrainOptions(architecture="densenet121", output="softmax", input_size=(48, 48), epochs=1, batch_size=8,
                        seed=1, device="cpu", channels=windows, normalize=norm, class_names=PHASE_CLASSES,
                        task="phase")
    tr = phantom_set(phantom_spec("train", 8, seed=1, task="phase"), list(windows), opts.input_size,
                     phantom_size=96, task="phase")
    val = phantom_set(phantom_spec("val", 4, seed=1, task="phase"), list(windows), opts.input_size,
                      phantom_size=96, task="phase")
    assert tr.x.shape == (8, 3, 48, 48) and tr.y.tolist() == [0, 1, 2, 3] * 2
    net, hist = train(opts, tr, val)
    card = make_card(opts, hist, data="phantom", command="test", n_train=8, n_val=4)
    path, card = save_trained(net, card, tmp_path / "phase.safetensors", half=False)
    clf = load(path, device="cpu")
    assert tuple(map(tuple, clf.card.windows)) == windows and clf.card.normalize == norm
    assert clf.class_names == PHASE_CLASSES
    hu = np.random.default_rng(0).uniform(-1000, 1000, (96, 96)).astype(np.float32)
    # the training input path (window → resize → normalise) is the classifier's (window → normalise → resize)
    from napari_ctinterp.model.classifier import hu_to_unit, resize_batch
    from napari_ctinterp.model.training import normalise

    by_training = normalise(resize_batch(torch.stack([hu_to_unit(hu, w) for w in windows])[None], (48, 48)), norm)
    assert torch.allclose(by_training, clf.preprocess(hu).contiguous(), atol=1e-5)
