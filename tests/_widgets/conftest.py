"""Shared fixture of the widget tests: a real viewer with the sample pair and one docked widget."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_ctinterp.model import Classifier, load


@pytest.fixture()
def docked(make_napari_viewer):
    """``docked(WidgetClass, name)`` → (viewer, widget): the sample pair open, the widget docked."""

    def make(widget_class, name: str):
        viewer = make_napari_viewer()
        viewer.open_sample("napari-ctinterp", "phantom_pair")
        widget = widget_class(viewer)
        viewer.window.add_dock_widget(widget, name=name)
        return viewer, widget

    return make


@pytest.fixture(autouse=True)
def _demo_model_chosen():
    """Every widget test starts (and leaves) with the demo model chosen: the choice is shared."""
    from napari_ctinterp._widgets.model_picker import selection

    selection.set("demo")
    yield
    selection.set("demo")


class FailingNet(nn.Module):
    """Raises ``RuntimeError`` (torch's usual error type) in every forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        raise RuntimeError("injected failure: this network cannot run")


@pytest.fixture()
def failing_model(monkeypatch) -> Classifier:
    """Makes ``model.load`` (as the widgets call it) return a classifier whose network raises."""
    import napari_ctinterp.model as model

    clf = Classifier(module=FailingNet(), card=load("demo").card, device=torch.device("cpu"), source="demo")
    monkeypatch.setattr(model, "load", lambda *a, **k: clf)
    return clf
