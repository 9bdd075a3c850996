"""3D models: the card (spatial_dims 3), building MONAI / torchvision video nets, the volume input
(resize, or resample + centre crop / pad) and its inverse onto the CT's grid, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_ctinterp.model import CheckpointError, Classifier, ModelCard, build, load, save_checkpoint
from napari_ctinterp.model.inputs import hu_to_unit
from napari_ctinterp.model.volume_input import resample

W1 = ({"window": [-1000, 1000]},)
W3 = ({"window": [-1000, 1000]}, {"window": [-160, 240]}, {"window": [-1350, 150]})


def _clf(arch: str = "r3d_18", size=(16, 32, 32), channels=W1, output="softmax", classes=("a", "b"), **card):
    c = ModelCard(architecture=arch, spatial_dims=3, input_size=size, channels=channels, output=output,
                  class_names=classes, **card)
    torch.manual_seed(0)
    net = build(arch, output, in_channels=len(channels), n_logits=c.n_logits, spatial_dims=3)
    return Classifier(net, c, torch.device("cpu"), source="test")


@pytest.fixture(scope="module")
def vol() -> np.ndarray:
    return np.random.default_rng(3).uniform(-1000, 1000, (20, 40, 48)).astype(np.float32)


def test_a_3d_card_round_trips_and_a_2d_card_is_unchanged():
    c = ModelCard(architecture="r3d_18", spatial_dims=3, input_size=(16, 32, 32), spacing_mm=(2, 1.5, 1.5),
                  pad_hu=-1024)
    assert c.is_3d and c.to_dict()["spatial_dims"] == 3 and c.to_dict()["spacing_mm"] == [2.0, 1.5, 1.5]
    assert ModelCard.from_dict(c.to_dict()) == c
    assert {"spatial_dims", "spacing_mm", "pad_hu"}.isdisjoint(ModelCard().to_dict())  # v1 cards keep their keys


@pytest.mark.parametrize("kw, says", [
    (dict(architecture="resnet18", spatial_dims=3, input_size=(16, 32, 32)), "'resnet18' is a 2D network"),
    (dict(architecture="r3d_18", input_size=(32, 32)), "'r3d_18' is a 3D network"),
    (dict(architecture="resnet18", input_size=(16, 32, 32)), 'add "spatial_dims": 3'),
    (dict(architecture="r3d_18", spatial_dims=3, input_size=(16, 32, 32),
          channels=({"window": [0, 1], "slice_offset": -1}, {"window": [0, 1]})), "slice offsets"),
    (dict(spacing_mm=(1, 1, 1)), "spacing_mm is for 3D models"),
    (dict(architecture="r3d_18", spatial_dims=3, input_size=(16, 32, 32), spacing_mm=(1, 0, 1)), "each > 0"),
    (dict(architecture="r3d_18", spatial_dims=4, input_size=(16, 32, 32)), "spatial_dims is 2"),
])
def test_bad_3d_cards_say_what_to_do(kw, says):
    with pytest.raises(ValueError, match=says):
        ModelCard(**kw)


@pytest.mark.parametrize("arch, size, channels", [("r3d_18", (16, 32, 32), W1), ("r3d_18", (16, 32, 32), W3),
                                                  ("mc3_18", (16, 24, 24), W1), ("r2plus1d_18", (16, 24, 24), W3),
                                                  ("monai.DenseNet121", (32, 32, 32), W1)])
def test_3d_nets_take_the_whole_volume(vol, arch, size, channels):
    clf = _clf(arch, size, channels, classes=("a", "b", "c", "d"))
    x = clf.preprocess(vol)
    assert x.shape == (1, len(channels), *size) and x.dtype == torch.float32
    p = clf.predict_proba(vol)
    assert p.shape == (4,) and abs(p.sum() - 1) < 1e-6
    assert clf.baseline(1.0).shape == (1, len(channels), 1, 1, 1)
    # resized whole: each channel windowed, then shrunk by area averaging / grown trilinearly
    for c, w in enumerate(channels):
        want = resample(hu_to_unit(vol, tuple(w["window"]))[None, None], size)[0, 0]
        torch.testing.assert_close(x[0, c], want)


def test_resampling_to_a_spacing_crops_and_pads_about_the_centre(vol):
    clf = _clf(size=(16, 32, 64), spacing_mm=(2.0, 1.0, 1.0), pad_hu=-1000)
    x = clf.preprocess(vol, spacing_mm=(2.0, 1.0, 1.0))[0, 0].numpy()  # the CT's own spacing: no resampling
    unit = hu_to_unit(vol, (-1000, 1000)).numpy()
    # z: 20 → 16, cropped from 2; y: 40 → 32, cropped from 4; x: 48 → 64, padded 8 on each side with air (0)
    np.testing.assert_array_equal(x[:, :, 8:56], unit[2:18, 4:36, :])
    assert (x[:, :, :8] == 0).all() and (x[:, :, 56:] == 0).all()
    g = clf.geometry(vol.shape, (2.0, 1.0, 1.0))
    assert g.start == (2, 4, -8) and g.outside.sum() == (20 * 40 * 48) - 16 * 32 * 48
    # a one-voxel input map lands on the CT voxel it came from
    one = np.zeros((16, 32, 64), np.float32)
    one[5, 7, 9 + 8] = 1.0
    back = g.to_ct(one)
    assert back.shape == vol.shape and back[5 + 2, 7 + 4, 9] == 1.0 and back.sum() == 1.0
    # at half the CT's spacing in-plane the volume doubles there before the crop
    g2 = clf.geometry(vol.shape, (2.0, 0.5, 0.5))
    assert g2.resampled_shape == (20, 20, 24)


def test_a_3d_model_refuses_what_is_not_a_volume(vol):
    clf = _clf()
    with pytest.raises(ValueError, match="open the series"):
        clf.preprocess(vol[0])
    with pytest.raises(ValueError, match="at least 8"):
        clf.preprocess(vol[:3])
    with pytest.raises(ValueError, match="no slice index"):
        clf.preprocess(vol, index=2)
    bad = vol.copy()
    bad[4, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.preprocess(bad)
    spaced = _clf(spacing_mm=(2.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="pass the CT's spacing"):
        spaced.predict_proba(vol)


def test_weights_of_a_3d_net_under_a_2d_card_are_refused_naming_both(tmp_path):
    clf = _clf()
    path, _ = save_checkpoint(clf.module, tmp_path / "r3d.safetensors", clf.card)
    assert load(path, device="cpu").card.is_3d
    wrong = ModelCard(architecture="resnet18", input_size=(32, 32), output="softmax", class_names=("a", "b"))
    with pytest.raises(CheckpointError, match="3D convolutions .* resnet18 is 2D"):
        load(path, card=wrong, device="cpu")


def test_resampling_grows_trilinearly_and_shrinks_without_aliasing():
    x = torch.rand(1, 1, 4, 5, 6)
    grown = resample(x, (8, 10, 12))  # separable linear interpolation is trilinear interpolation
    torch.testing.assert_close(grown, F.interpolate(x, size=(8, 10, 12), mode="trilinear"), atol=1e-5, rtol=1e-5)
    z, y, w = np.indices((32, 32, 32))
    checker = torch.as_tensor(((z + y + w) % 2).astype(np.float32))[None, None]
    shrunk = resample(checker, (8, 8, 8))  # sampled, it would be all 0 or all 1; averaged, 0.5
    assert float((shrunk - 0.5).abs().max()) < 0.05
    assert torch.equal(resample(x, (4, 5, 6)), x)  # an axis kept at its size is left as it is
