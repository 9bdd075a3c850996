"""What a person saw on screenshots at 1920 × 1080 (issue 28), each kept by a check."""

from __future__ import annotations

import numpy as np

from napari_ctinterp._widgets.dock_layout import wrapping_label
from napari_ctinterp._widgets.score_table import _header
from napari_ctinterp._widgets.trust import WARNING_STYLE, show_trust


def test_two_word_headers_wrap_instead_of_being_cut():
    assert _header("max Dice") == "max\nDice" and _header("AUC") == "AUC"


def test_a_warning_beside_an_answer_is_styled_apart_from_a_plain_verdict(qtbot):
    label = wrapping_label()
    show_trust(label, "⚠ Out of domain — this slice: …")
    assert label.visible and label.native.styleSheet() == WARNING_STYLE
    show_trust(label, "in the model's domain (score 0.97 ≤ threshold 2.39)")
    assert label.native.styleSheet() == ""
    show_trust(label, None)
    assert not label.visible


def test_scores_along_z_have_whole_slice_ticks(make_napari_viewer):
    from napari_ctinterp._widgets.along_z import AlongZ
    from napari_ctinterp.metrics import localisation_volume

    rng = np.random.default_rng(0)
    maps = rng.uniform(size=(12, 32, 32)).astype(np.float32)
    mask = np.zeros((12, 32, 32), bool)
    mask[2:11, 10:20, 10:20] = True
    along = AlongZ(make_napari_viewer(), lambda: None, lambda: None)
    along._show(localisation_volume(maps, mask), "BP · plain")
    ticks = along.figure.axes[0].get_xticks()
    assert len(ticks) > 1 and np.allclose(ticks, np.round(ticks))  # no 10.5

