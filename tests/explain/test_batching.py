"""Automatic gradient batch size: free memory, device caps, and the CPU large-tensor limit."""

from __future__ import annotations

import torch

from napari_ctinterp.model import Classifier, ModelCard, build
from napari_ctinterp.runtime import batching


def _clf(size: int) -> Classifier:
    torch.manual_seed(0)
    return Classifier(build("resnet18"), ModelCard(input_size=(size, size)), torch.device("cpu"), source="test")


def test_cpu_batch_keeps_the_largest_activation_under_the_mmap_limit(monkeypatch):
    # Plenty of free memory, whatever else runs on the machine: this test is about the caps.
    monkeypatch.setattr(batching, "free_memory_bytes", lambda device: 64 * 2**30)
    clf = _clf(256)
    largest = batching.largest_activation_bytes(clf, (256, 256))
    assert largest == 64 * 128 * 128 * 4  # the stem's output, one image, float32
    bs = batching.auto_batch_size(clf, (256, 256))
    assert bs == batching.CPU_TENSOR_BYTES // largest == 7
    assert bs * largest <= batching.CPU_TENSOR_BYTES
    # small inputs are capped by CPU_CAP, huge ones floored at CPU_MIN
    assert batching.auto_batch_size(clf, (64, 64)) == batching.CPU_CAP
    assert batching.auto_batch_size(clf, (1024, 1024)) == batching.CPU_MIN
    assert batching.activation_bytes_per_image(clf, (256, 256)) > 10 * largest


def test_little_free_memory_shrinks_the_batch_to_one(monkeypatch):
    clf = _clf(128)
    per = batching.activation_bytes_per_image(clf, (128, 128))
    monkeypatch.setattr(batching, "free_memory_bytes", lambda device: 4 * 3 * per)
    assert batching.auto_batch_size(clf, (128, 128)) == 3
    monkeypatch.setattr(batching, "free_memory_bytes", lambda device: 10)
    assert batching.auto_batch_size(clf, (128, 128)) == 1
