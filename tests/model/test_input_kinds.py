"""Inputs people bring: other dtypes give the float32 answer; images too small or too elongated are refused;
masks with labels other than 0/1 are read as > 0 and say so."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ctinterp.explain import explain
from napari_ctinterp.metrics import fidelity, localisation, localisation_volume, mask_note
from napari_ctinterp.model import load
from napari_ctinterp.phantom import make_slice


@pytest.fixture(scope="module")
def demo():
    return load("demo")


@pytest.fixture(scope="module")
def slice_hu() -> np.ndarray:
    return make_slice(seed=5, contrast=True, size=128).hu


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int16])
def test_dtypes_give_the_float32_answer(demo, slice_hu, dtype) -> None:
    given = np.clip(np.round(slice_hu), -1024, 3000).astype(dtype)  # int16 needs integers
    as32 = given.astype(np.float32)  # the same values (float16 rounds integers above 2048 to even: taken from it)
    assert demo.predict(given) == demo.predict(as32)
    np.testing.assert_array_equal(demo.predict(np.stack([given, given])), demo.predict(np.stack([as32, as32])))
    kw = dict(methods=("BP", "IGB"), variants=("plain",), steps=4, seed=0)
    a, b = explain(demo, given, **kw), explain(demo, as32, **kw)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    m = np.abs(a["BP", "plain"])[None].astype(np.float32)
    fa = fidelity(demo, given[None], m, np.array([1]), bootstrap=1, step=25)
    fb = fidelity(demo, as32[None], m, np.array([1]), bootstrap=1, step=25)
    np.testing.assert_array_equal(fa.prob_mif, fb.prob_mif)
    assert fa.F == fb.F


@pytest.mark.parametrize(("shape", "match"), [
    ((24, 24), "24 × 24 px, under 32 px a side"),
    ((512, 31), "31 × 512 px, under 32 px a side"),
    ((64, 400), r"400 × 64 px; resized to the model's 256 × 256 one axis would be stretched 6.2 times"),
])
def test_small_or_elongated_images_are_refused(demo, shape, match) -> None:
    img = np.full(shape, 40.0, np.float32)
    with pytest.raises(ValueError, match=match):
        demo.predict(img)
    with pytest.raises(ValueError, match=match):
        explain(demo, img, methods=("BP",), variants=("plain",))
    demo.predict(np.full((32, 128), 40.0, np.float32))  # the limits themselves are accepted


def test_label_valued_masks_are_read_as_positive() -> None:
    rng = np.random.default_rng(0)
    values = rng.random((40, 50))
    labels = np.zeros((40, 50), np.int16)
    labels[5:15, 5:20], labels[20:30, 25:40], labels[0, :] = 2, 7, -1  # two organs and a "no data" row
    binary = labels > 0
    a, b = localisation(values, labels), localisation(values, binary)
    assert (a.auc, a.max_dice) == (b.auc, b.max_dice)
    assert a.mask_note == ("mask labels -1, 2, 7: every label > 0 is taken as expected evidence; "
                           "labels < 0 are background")
    assert b.mask_note == "" and localisation(values, binary.astype(np.uint8)).mask_note == ""
    frac = np.where(binary, np.where(values > 0.5, 0.8, 0.3), 0.0)  # a fractional mask from another tool
    assert localisation(values, frac).auc == localisation(values, binary).auc  # every value > 0 counts
    assert "mask values from 0 to 0.8" in mask_note(frac)
    vol = localisation_volume(np.stack([values, values]), np.stack([labels, labels]))
    assert vol.volume is not None and vol.mask_note == a.mask_note
    nan_mask = frac.copy()
    nan_mask[0, 0] = np.nan  # a probability map from another tool with a hole
    assert mask_note(nan_mask).endswith("1 NaN/inf pixel(s): NaN and -inf are background, +inf is evidence")
    assert mask_note(np.array([[0, -1]])) == "mask labels -1, 0: none is > 0, so it marks no evidence"
    assert vol.volume.auc == localisation_volume(np.stack([values, values]), np.stack([binary, binary])).volume.auc


def test_a_model_with_a_small_input_takes_images_of_its_size() -> None:
    import torch

    from napari_ctinterp.model import Classifier, ModelCard, build

    clf = Classifier(build("resnet18"), ModelCard(input_size=(16, 16)), torch.device("cpu"))
    clf.predict(np.zeros((16, 16), np.float32))
    with pytest.raises(ValueError, match="12 × 12 px, under 16 px a side"):
        clf.predict(np.zeros((12, 12), np.float32))
    # the aspect limit is against the model's own input: a 64 × 256 model takes 64 × 256 strips
    strips = Classifier(build("resnet18"), ModelCard(input_size=(64, 256)), torch.device("cpu"))
    strips.predict(np.zeros((64, 256), np.float32))
    strips.predict(np.zeros((100, 1000), np.float32))  # stretched 2.5 times: accepted
    with pytest.raises(ValueError, match="stretched 4.7 times the other"):
        strips.predict(np.zeros((300, 256), np.float32))
