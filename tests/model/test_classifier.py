"""Classifier: the input space, predictions, target scores, batching with out-of-memory fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_ctinterp.model import Classifier, ModelCard, build


@pytest.fixture()
def clf():
    torch.manual_seed(0)
    return Classifier(build("resnet18"), ModelCard(input_size=(64, 64)), torch.device("cpu"))


def test_preprocess_windows_scales_and_resizes(clf):
    hu = np.full((128, 96), -1000.0, np.float32)
    hu[:, 48:] = 3000.0  # clipped to the window's top
    x = clf.preprocess(hu)
    assert x.shape == (1, 1, 64, 64) and x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == pytest.approx(1.0)
    stack = clf.preprocess(np.zeros((5, 32, 32), np.float32))
    assert stack.shape == (5, 1, 64, 64) and torch.allclose(stack, torch.full_like(stack, 0.5))
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_bad_images_get_clear_errors(clf):
    bad = np.zeros((32, 32), np.float32)
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="1 NaN/inf pixels"):
        clf.predict(bad)
    with pytest.raises(ValueError, match=r"slice \(H, W\) or a stack"):
        clf.predict(np.zeros((2, 2, 2, 2)))


def test_predict_float_for_slice_array_for_stack(clf):
    rng = np.random.default_rng(0)
    vol = rng.uniform(-1000, 1000, (3, 64, 64)).astype(np.float32)
    p_stack = clf.predict(vol)
    assert isinstance(p_stack, np.ndarray) and p_stack.shape == (3,)
    p0 = clf.predict(vol[0])
    assert isinstance(p0, float) and p0 == pytest.approx(p_stack[0], abs=1e-5)
    assert clf.module.training is False
    assert all(not p.requires_grad for p in clf.module.parameters())


def test_target_score_is_evidence_for_the_target(clf):
    logits = torch.tensor([[2.0], [-3.0]])
    assert clf.target_score(logits, torch.tensor([1, 1])).tolist() == [2.0, -3.0]
    assert clf.target_score(logits, torch.tensor([0, 0])).tolist() == [-2.0, 3.0]
    two = Classifier(build("resnet18", "softmax2"), ModelCard(input_size=(64, 64), output="softmax2"),
                     torch.device("cpu"))
    assert two.target_score(torch.tensor([[1.0, 5.0]]), torch.tensor([0])).tolist() == [1.0]


def test_out_of_memory_halves_the_batch_instead_of_failing(clf):
    x = clf.preprocess(np.random.default_rng(1).uniform(-500, 500, (6, 64, 64)).astype(np.float32))
    ref = clf.logits(x, batch_size=1)
    real_forward = clf.module.forward
    seen = []

    def flaky(inp):
        seen.append(len(inp))
        if len(inp) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(inp)

    clf.module.forward = flaky
    out = clf.logits(x, batch_size=8)
    assert torch.allclose(out, ref, atol=1e-5) and max(seen) == 6 and seen[-1] <= 2
