"""Attribution maps through napari: a map layer saved by the plugin's writer (NIfTI, DICOM Parametric
Map) opens back with the plugin's reader over its CT (same data, scale and translate, a map the
widgets recognise); a map of another CT is refused; without its CT a NIfTI opens alone, with a note."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from napari_ctinterp._widgets.layer_info import KEY, MapLayerInfo, slice_of
from napari_ctinterp._widgets.maps import HEAT, map_layers
from napari_ctinterp.io import load_map, read_ct, write_dicom_series
from napari_ctinterp.phantom import make_volume

PLUGIN = "napari-ctinterp"


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """A 10-slice 32² phantom series (origin off zero) and another volume's series."""
    root = tmp_path_factory.mktemp("plugin_maps")
    vol = make_volume(8, n_slices=10, size=32, spacing_mm=2.5)
    write_dicom_series(vol.hu, root / "case" / "ct", spacing_mm=vol.spacing_mm, origin=(-30.0, 12.0, 100.0), seed=4)
    other = make_volume(9, n_slices=12, size=32, spacing_mm=2.0)
    write_dicom_series(other.hu, root / "other" / "ct", spacing_mm=other.spacing_mm, seed=5)
    return root


def _add_map(viewer, ct, values, *, slices=(), full_z=True, translate=None):
    info = MapLayerInfo.of_run("IGB", "SG2", image=ct.name, params={"target": 1, "model": "demo-3d"},
                               slices=list(slices), full_z=full_z, targets=[1] * len(slices))
    return viewer.add_image(values, name=f"IGB · SG2 — {ct.name}", scale=ct.scale,
                            translate=ct.translate if translate is None else translate,
                            metadata=info.layer_metadata(signed=values), colormap=HEAT)


@pytest.mark.parametrize("suffix", [".nii.gz", ".dcm"])
def test_a_map_layer_saved_and_opened_again_lies_on_its_ct(make_napari_viewer, series, suffix):
    viewer = make_napari_viewer()
    ct = viewer.open(str(series / "case" / "ct"), plugin=PLUGIN)[0]
    values = np.random.default_rng(0).random(ct.data.shape).astype(np.float32)
    layer = _add_map(viewer, ct, values)
    out = series / "case" / "maps" / f"igb{suffix}"
    layer.save(str(out), plugin=PLUGIN)
    assert load_map(out, reference=read_ct(series / "case" / "ct")).aligned
    viewer.layers.remove(layer)
    back = viewer.open(str(out), plugin=PLUGIN)[0]
    assert len(viewer.layers) == 2  # the open CT was used, not opened again
    np.testing.assert_allclose(np.asarray(back.data), values)
    np.testing.assert_allclose(back.scale, ct.scale)
    np.testing.assert_allclose(back.translate, ct.translate)
    info = MapLayerInfo.from_layer(back)
    assert info is not None
    assert (info.method, info.variant, info.model, info.image) == ("IGB", "SG2", "demo-3d", ct.name)
    assert map_layers(viewer, ct.name) == [back]  # Gallery and Metrics see a map of this CT
    assert back.colormap.name == HEAT.name and back.blending == "translucent"


def test_a_one_slice_map_is_saved_on_the_whole_grid_and_comes_back_at_its_slice(make_napari_viewer, series):
    viewer = make_napari_viewer()
    ct = viewer.open(str(series / "case" / "ct"), plugin=PLUGIN)[0]
    one = np.random.default_rng(1).random((1, *ct.data.shape[1:])).astype(np.float32)
    z = 6
    translate = (ct.translate[0] + z * ct.scale[0], *ct.translate[1:])
    layer = _add_map(viewer, ct, one, slices=[z], full_z=False, translate=translate)
    out = series / "case" / "maps" / "one.dcm"
    layer.save(str(out), plugin=PLUGIN)
    back = viewer.open(str(out), plugin=PLUGIN)[0]
    info = MapLayerInfo.from_layer(back)
    assert back.data.shape == ct.data.shape and info.full_z and list(info.slices) == [z]
    np.testing.assert_allclose(slice_of(back.data, info, z), one[0])
    assert slice_of(back.data, info, z - 1) is None  # no map there
    np.testing.assert_allclose(back.translate, ct.translate)
    two = np.random.default_rng(4).random((2, *ct.data.shape[1:])).astype(np.float32)  # a stack of 2 slices
    _add_map(viewer, ct, two, slices=[7, 2], full_z=False).save(str(out.with_name("two.nii.gz")), plugin=PLUGIN)
    back = viewer.open(str(out.with_name("two.nii.gz")), plugin=PLUGIN)[0]
    info = MapLayerInfo.from_layer(back)
    np.testing.assert_allclose(slice_of(back.data, info, 7), two[0])
    np.testing.assert_allclose(slice_of(back.data, info, 2), two[1])
    assert info.target_of(2) == 1 and slice_of(back.data, info, 3) is None


def test_a_map_of_another_ct_is_refused_and_alone_it_opens_on_its_own_grid(make_napari_viewer, series, tmp_path):
    viewer = make_napari_viewer()
    ct = viewer.open(str(series / "case" / "ct"), plugin=PLUGIN)[0]
    values = np.random.default_rng(2).random(ct.data.shape).astype(np.float32)
    out = series / "case" / "maps" / "refused.nii.gz"
    _add_map(viewer, ct, values).save(str(out), plugin=PLUGIN)
    other = make_napari_viewer()
    other.open(str(series / "other" / "ct"), plugin=PLUGIN)
    with pytest.raises(Exception, match="refused.nii.gz was computed on series .*another grid shape"):
        other.open(str(out), plugin=PLUGIN)
    assert len(other.layers) == 1
    far = tmp_path / "a" / "b" / "refused.nii.gz"  # no CT open, none beside the file
    far.parent.mkdir(parents=True)
    shutil.copy(out, far)
    alone = make_napari_viewer()
    with pytest.warns(UserWarning, match="shown alone on its own grid"):
        layer = alone.open(str(far), plugin=PLUGIN)[0]
    np.testing.assert_allclose(np.asarray(layer.data), values)
    np.testing.assert_allclose(layer.scale, ct.scale)
    beside = make_napari_viewer()  # no CT open, its series beside the file: opened with it
    layers = beside.open(str(out), plugin=PLUGIN)
    assert [type(ly).__name__ for ly in beside.layers] == ["Image", "Image"] and len(layers) == 2
    np.testing.assert_allclose(beside.layers[1].scale, beside.layers[0].scale)
    assert MapLayerInfo.from_layer(beside.layers[1]).image == beside.layers[0].name


def test_a_phantom_ct_map_saves_as_nifti_and_a_parametric_map_needs_a_dicom_series(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "phantom_volume")
    ct = viewer.layers[0]
    values = np.random.default_rng(3).random(ct.data.shape).astype(np.float32)
    layer = _add_map(viewer, ct, values)
    with pytest.warns(UserWarning):  # napari's "not a valid writer"; the reason is a notification
        layer.save(str(tmp_path / "m.dcm"), plugin=PLUGIN)
    assert not (tmp_path / "m.dcm").exists()
    layer.save(str(tmp_path / "m.nii.gz"), plugin=PLUGIN)
    back = viewer.open(str(tmp_path / "m.nii.gz"), plugin=PLUGIN)[0]
    np.testing.assert_allclose(np.asarray(back.data), values)
    np.testing.assert_allclose(back.scale, ct.scale)
    assert MapLayerInfo.from_layer(back).image == ct.name
    with pytest.warns(UserWarning):  # the CT itself is not a map: this writer refuses it
        ct.save(str(tmp_path / "ct.nii.gz"), plugin=PLUGIN)
    assert not (tmp_path / "ct.nii.gz").exists()


def test_the_readers_map_display_and_key_are_the_widgets():
    from napari_ctinterp import _reader

    assert _reader.MAP_KEY == KEY
    np.testing.assert_allclose(_reader._HEAT[0], HEAT.colors)
    np.testing.assert_allclose(_reader._HEAT[1], HEAT.controls)


def test_the_manifest_lists_the_map_writer_for_image_layers():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    writers = {w.command: w for w in pm.get_manifest(PLUGIN).contributions.writers}
    assert writers[f"{PLUGIN}.write_map"].layer_types == ["image"]
    assert set(writers[f"{PLUGIN}.write_map"].filename_extensions) == {".nii", ".nii.gz", ".dcm"}
