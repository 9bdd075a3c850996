"""A checkpoint whose card names the wrong network says which known network its weights are."""

from __future__ import annotations

import pytest
import torch

from napari_ctinterp.model import CheckpointError, ModelCard, build, load_checkpoint, save_checkpoint


@pytest.mark.parametrize("real, claimed", [("resnet50", "resnet18"), ("densenet121", "resnet34")])
def test_a_card_with_the_wrong_architecture_names_the_one_the_weights_match(tmp_path, real, claimed):
    torch.manual_seed(0)
    card = ModelCard(architecture=real, input_size=(64, 64))
    path, _ = save_checkpoint(build(real, "logit"), tmp_path / "w.safetensors", card)
    wrong = ModelCard(architecture=claimed, input_size=(64, 64))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, card=wrong)
    message = str(err.value)
    assert message.startswith(f"These weights look like {real}: set \"architecture\": \"{real}\""), message[:300]
    assert "does not match its card" in message and "keys" in message  # the detailed list is still there


def test_weights_of_no_known_network_get_no_guess(tmp_path):
    card = ModelCard(architecture="resnet18", input_size=(64, 64))
    path, _ = save_checkpoint(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)), tmp_path / "w.safetensors", card)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, card=card)
    assert "look like" not in str(err.value) and "does not match its card" in str(err.value)
