"""The main job (`ctinterp demo`) opens napari with the data and every widget, without crashing."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from napari_ctinterp.cli import build_parser


def test_demo_opens_napari_with_widgets_and_saves_a_screenshot(tmp_path):
    # A fresh process, as the README's main command runs it: torch is imported only when the widgets
    # dock, after napari brought up OpenGL (that order once segfaulted in triton's loader).
    shot = tmp_path / "demo.png"
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    done = subprocess.run([sys.executable, "-m", "napari_ctinterp.cli", "demo", "--screenshot", str(shot)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    img = np.asarray(Image.open(shot))
    assert img.shape[0] > 500 and img[..., :3].std() > 10


def test_parser_knows_every_command():
    parser = build_parser()
    for cmd in (["demo"], ["train", "--demo"], ["evaluate"], ["study", "--demo"]):
        assert parser.parse_args(cmd).command == cmd[0]


def test_train_refuses_a_one_logit_head_for_the_four_phase_classes_before_training():
    import pytest

    from napari_ctinterp.cli import main

    with pytest.raises(SystemExit, match="--output softmax"):
        main(["train", "--task", "phase", "--output", "logit", "--out", "never.safetensors"])
