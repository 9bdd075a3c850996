"""Which voxels of a whole-CT map layer hold the map (explained slices, a 3D model's input), its
axial MIP, and a 3D model's map read slice by slice."""

from __future__ import annotations

import napari
import numpy as np
import pytest

from napari_ctinterp._widgets import map_voxels as mv
from napari_ctinterp._widgets.layer_info import MapLayerInfo, slice_of
from napari_ctinterp._widgets.map_voxels import axial_mip, explained_slices, outside_voxels, scored_voxels


def _layer(data, **record):
    info = MapLayerInfo.of_run("BP", "plain", image="ct", params=record.pop("params", {}), **record)
    return napari.layers.Image(data, metadata=info.layer_metadata(**record.pop("more", {})))


def test_a_stack_holds_its_map_on_its_explained_slices_only():
    data = np.zeros((6, 4, 5), np.float32)
    data[2] = -3.0  # signed values: the MIP is of |map|
    data[4, 1, 1] = 2.0
    layer = _layer(data, slices=[2, 4], full_z=True)
    assert mv.is_volume_map(layer) and explained_slices(layer) == [2, 4]
    assert mv.region_scope(MapLayerInfo.from_layer(layer)) == "slice"
    keep = scored_voxels(layer)
    assert keep.sum() == 2 * 20 and keep[2].all() and not keep[3].any()
    assert outside_voxels(layer) is None
    mip = axial_mip(layer)
    assert mip.shape == (4, 5) and np.all(mip == 3.0) and axial_mip(layer) is mip  # remembered for this data
    assert not mv.is_volume_map(_layer(data[:1], slices=[3]))  # one slice placed at its index


def test_a_3d_models_map_every_slice_and_its_outside_voxels():
    data = np.random.default_rng(0).random((5, 4, 4)).astype(np.float32)
    outside = np.zeros(data.shape, bool)
    outside[:, 0] = True
    record = {"params": {"spatial_dims": 3, "outside_voxels": int(outside.sum()), "model": "nowhere.pt"}}
    layer = _layer(data, full_z=True, more={mv.OUTSIDE_KEY: outside}, **record)
    info = MapLayerInfo.from_layer(layer)
    assert explained_slices(layer) == [0, 1, 2, 3, 4] and mv.region_scope(info) == "volume"
    assert np.array_equal(outside_voxels(layer), outside) and np.array_equal(scored_voxels(layer), ~outside)
    assert np.array_equal(slice_of(layer.data, info, 3), data[3])  # no slices recorded: every slice holds it
    lost = _layer(data, full_z=True, **{"params": {**record["params"], "model": "/nowhere/model.safetensors"}})
    with pytest.raises(ValueError, match="cannot be loaded"):  # the outside voxels must be known, or said so
        outside_voxels(lost)
