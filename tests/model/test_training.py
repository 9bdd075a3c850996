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
    from napari_ctinterp.phantom import make_slice, write_dicom_series

    for i, contrast in enumerate((True, False)):
        write_dicom_series([make_slice(i, contrast=contrast, size=64)], tmp_path / f"case{i}", seed=i)
    (tmp_path / "labels.csv").write_text("file,label\ncase0,contrast\ncase1,0\n")
    data = folder_set(tmp_path, tmp_path / "labels.csv", (-1000, 1000), (32, 32))
    assert data.x.shape == (2, 1, 32, 32) and data.y.tolist() == [1, 0]
