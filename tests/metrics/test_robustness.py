"""Max-sensitivity equals Quantus' ``MaxSensitivity`` with the same noise and the same explanation
function (our engine, one map at a time), for every method of the paper and Grad-CAM, plain and
SmoothGrad, from one gradient plan; and it behaves on known cases."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch
from metric_helpers import linear_classifier, resnet18_classifier

from napari_ctinterp.explain import ExplainOptions
from napari_ctinterp.explain.engine import iter_run
from napari_ctinterp.metrics.robustness import max_sensitivity, perturbed_inputs
from napari_ctinterp.model import Classifier, ModelCard, build
from napari_ctinterp.progress import drive

OPTS = ExplainOptions(methods=("BP", "IGB", "EG", "GC"), variants=("plain", "SG2"), steps=4, samples=4, sg_samples=3,
                      seed=5)


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return resnet18_classifier(40, seed=3)


def _one_map(clf, refs, method, variant, sign):
    """Quantus' ``explain_func``: our engine's map of one method and variant, one input at a time (all
    of ``OPTS``' variants asked, as ours are: EG's draws are made per base input, plain's included)."""
    opts = ExplainOptions(**{**OPTS.__dict__, "methods": (method,)})

    def explain_func(model, inputs, targets, **_):
        out = []
        for xi, t in zip(inputs, targets):
            maps = drive(iter_run(clf, torch.as_tensor(xi[None], dtype=torch.float32), int(t), opts, refs), None)
            key = ("GC pre-ReLU" if method == "GC" and sign == "signed" else method, variant)
            m = maps[key].numpy()
            out.append(np.abs(m) if sign == "absolute" else m)
        return np.stack(out)[:, None]

    return explain_func


def test_equals_quantus_max_sensitivity(clf):
    """Quantus ``MaxSensitivity(nr_samples=3, lower_bound=r, norm_numerator=fro_norm,
    norm_denominator=fro_norm, similarity_func=difference, abs=False, normalise=False)``, r = 0.05 ×
    the input's range, ``np.random.seed(seed)`` before the call; its ``a_batch`` is the map at x."""
    x = torch.rand(1, 1, 40, 40)
    refs = torch.rand(6, 1, 40, 40)
    ours = max_sensitivity(clf, x, 1, OPTS, refs, n_samples=3, radius=0.05, seed=9)
    assert set(ours) == {(m, v, s) for m in OPTS.methods for v in OPTS.variants for s in ("absolute", "signed")}
    r = 0.05 * float(x.max() - x.min())
    for (method, variant, sign), value in ours.items():
        explain_func = _one_map(clf, refs, method, variant, sign)
        a = explain_func(clf.module, x.numpy(), np.array([1]))
        metric = quantus.MaxSensitivity(nr_samples=3, lower_bound=r, norm_numerator=quantus.norm_func.fro_norm,
                                        norm_denominator=quantus.norm_func.fro_norm,
                                        similarity_func=quantus.similarity_func.difference, abs=False,
                                        normalise=False, return_aggregate=False, disable_warnings=True)
        np.random.seed(9)
        ref = metric(model=clf.module.eval(), x_batch=x.numpy(), y_batch=np.array([1]), a_batch=a,
                     explain_func=explain_func, device="cpu")
        # the perturbed inputs share batches here and not in Quantus' calls: float noise only
        assert value == pytest.approx(float(ref[0]), rel=1e-4), (method, variant, sign)
        assert value > 0


def test_noise_is_quantus_uniform_noise_and_relative_to_the_range():
    x = torch.linspace(-2, 3, 60).reshape(1, 1, 6, 10)
    xs = perturbed_inputs(x, 4, 0.1, 2)
    rng = np.random.RandomState(2)
    for s in range(4):
        expected = x.reshape(1, -1).numpy() + rng.uniform(-0.5, 0.5, size=(1, 60))
        np.testing.assert_allclose(xs[s].reshape(1, -1).numpy(), expected, atol=1e-6)
    assert float((xs - x).abs().max()) <= 0.5 + 1e-6


def test_a_linear_models_gradient_does_not_move_and_occlusion_is_left_out():
    """Backprop of a model linear in x is the same at every x: max-sensitivity 0; IG's map (w · x)
    moves with x by about the noise's size."""

    lin = linear_classifier(16)
    x = torch.rand(1, 1, 16, 16) * 0.5 + 0.5
    out = max_sensitivity(lin, x, 1, ExplainOptions(methods=("BP", "IGB", "OCC"), variants=("plain",), steps=3),
                          n_samples=4, radius=0.05)
    assert out["BP", "plain", "absolute"] == pytest.approx(0.0, abs=1e-6)
    assert 0.005 < out["IGB", "plain", "absolute"] < 0.2
    assert not any(k[0] == "OCC" for k in out)


def test_chunks_of_inputs_and_a_3d_model_give_the_same_numbers(clf, monkeypatch):
    """The n + 1 inputs are explained in chunks (at most CHUNK_ROWS gradient evaluations each): one
    input per chunk gives the numbers of all at once; a 3D model's maps go through the same code."""
    from napari_ctinterp.metrics import robustness

    x = torch.rand(1, 1, 40, 40)
    opts = ExplainOptions(methods=("BP", "GC"), variants=("plain",))
    together = max_sensitivity(clf, x, 0, opts, n_samples=3)
    monkeypatch.setattr(robustness, "CHUNK_ROWS", 1)
    # the same numbers up to float noise from the batches' composition (Grad-CAM's: 4e-5 relative)
    assert max_sensitivity(clf, x, 0, opts, n_samples=3) == pytest.approx(together, rel=1e-4)

    card3 = ModelCard(architecture="ctinterp.CompactCNN3d", spatial_dims=3, input_size=(16, 16, 16),
                      output="softmax", class_names=("a", "b"))
    torch.manual_seed(0)
    c3 = Classifier(build("ctinterp.CompactCNN3d", "softmax", in_channels=1, n_logits=2, spatial_dims=3), card3,
                    torch.device("cpu"), source="test")
    v = torch.rand(1, 1, 16, 16, 16)
    out = max_sensitivity(c3, v, 1, ExplainOptions(methods=("BP", "IGB"), variants=("plain", "SG"), steps=3,
                                                   sg_samples=2), n_samples=2)
    assert len(out) == 8 and all(np.isfinite(val) and val > 0 for val in out.values())
