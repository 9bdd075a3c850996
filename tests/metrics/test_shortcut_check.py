"""The intervention bookkeeping on synthetic slices and two stub models whose answers are known:
one reads a bright corner block (the "marker"), the other the centre's density (the "contrast")."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_ctinterp.metrics.shortcut_check import MarkerSlices, interventions
from napari_ctinterp.model import Classifier, ModelCard


class _Reads(nn.Module):
    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.where == "corner":  # a pixel at the top of the window: the marker
            return (1000 * (x.amax(dim=(1, 2, 3)) - 0.99))[:, None]
        return (100 * (x[:, :, 12:20, 12:20].mean(dim=(1, 2, 3)) - 0.55))[:, None]  # the centre's density


def _clf(where: str) -> Classifier:
    card = ModelCard(architecture="resnet18", input_size=(32, 32), output="logit")  # the card of a stub net
    return Classifier(_Reads(where).eval(), card, torch.device("cpu"), source="test")


@pytest.fixture(scope="module")
def slices() -> MarkerSlices:
    n = 20
    contrast = np.arange(n) % 2 == 1
    plain = np.full((n, 32, 32), -1000.0, np.float32)
    plain[:, 12:20, 12:20] = np.where(contrast, 300.0, 40.0)[:, None, None]  # the "blood pool"
    marked, moved = plain.copy(), plain.copy()
    marked[:, 1:4, 1:4] = 2500.0
    moved[:, 28:31, 1:4] = 2500.0
    kinds = tuple(("letter", "tube", "text")[i % 3] for i in range(n))
    return MarkerSlices(plain, marked, moved, plain.copy(), contrast, kinds)


def test_a_model_that_reads_the_marker(slices):
    r = interventions(_clf("corner"), slices)
    assert r.follows_marker == 1.0 and r.accuracy_disagreeing == 0.0 and r.accuracy_marker_removed == 0.5
    assert r.changed_by_adding == 1.0 and r.changed_by_moving == 0.0 and r.changed_by_removing == 1.0
    assert r.by_kind == {"letter": 1.0, "text": 1.0, "tube": 1.0}


def test_a_model_that_reads_the_contrast(slices):
    r = interventions(_clf("centre"), slices)
    assert r.follows_marker == 0.0 and r.accuracy_disagreeing == 1.0 and r.accuracy_marker_removed == 1.0
    assert r.changed_by_adding == r.changed_by_moving == r.changed_by_removing == 0.0
