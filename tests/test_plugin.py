"""The plugin as napari sees it: manifest, sample data, reader and writer in a real viewer."""

from __future__ import annotations

import numpy as np
import pytest
from npe2 import PluginManager

from napari_ctinterp._layers import MEDIASTINAL_WINDOW
from napari_ctinterp._reader import get_reader
from napari_ctinterp.io import write_dicom_series
from napari_ctinterp.phantom import make_slice

PLUGIN = "napari-ctinterp"
EXPECTED_WIDGETS = {"Classify", "Explain", "Metrics", "Gallery", "Probe"}


def test_napari_lists_the_plugin_with_reader_writer_sample_data_and_widgets():
    pm = PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest(PLUGIN)
    contrib = manifest.contributions
    assert {r.command for r in contrib.readers} == {f"{PLUGIN}.read_ct", f"{PLUGIN}.read_mask"}
    assert [w.command for w in contrib.writers] == [f"{PLUGIN}.write_mask", f"{PLUGIN}.write_map"]
    assert {s.key for s in contrib.sample_data} == {"phantom_pair", "phantom_pair_marker", "phantom_volume", "ct_small"}
    widgets = {w.display_name for w in contrib.widgets or []}
    assert widgets == EXPECTED_WIDGETS
    # The manifest that ships in the package is the one at the repository root.
    assert manifest.name == PLUGIN


def test_sample_pair_opens_as_scaled_layers(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "phantom_pair")
    names = [layer.name for layer in viewer.layers]
    assert names == ["phantom · no contrast", "phantom · arterial", "phantom · reference mask"]
    plain, art, mask = viewer.layers
    assert tuple(plain.contrast_limits) == MEDIASTINAL_WINDOW
    spacing = plain.metadata["spacing_mm"]
    assert np.allclose(plain.scale, spacing) and np.allclose(mask.scale, spacing)
    assert 0.5 < spacing[0] < 0.9
    diff = art.data - plain.data
    assert np.array_equal(mask.data > 0, diff >= 50) or (np.mean((mask.data > 0) == (diff >= 50)) > 0.9999)


def test_the_marker_pair_has_the_same_marker_on_both_slices_and_its_own_mask(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "phantom_pair_marker")
    plain, art, mask, marker = viewer.layers
    assert marker.name == "phantom · marker mask" and marker.metadata["marker"]["kind"] == "letter"
    m = np.asarray(marker.data) > 0
    assert m.any() and not (m & (np.asarray(mask.data) > 0)).any()  # the marker lies outside the expert mask
    assert (plain.data[m] > 1500).all() and (art.data[m] > 1500).all()  # lead: bright on both slices
    np.testing.assert_array_equal(plain.data[m], art.data[m])  # the same marker, where no contrast is


def test_ct_small_sample_is_real_ct(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "ct_small")
    layer = viewer.layers[0]
    assert layer.data.shape == (128, 128)
    assert layer.metadata["modality"] == "CT"
    assert "PatientName" not in str(layer.metadata) and "CompressedSamples" not in layer.name


def test_reader_opens_folder_into_one_scaled_layer(make_napari_viewer, tmp_path):
    vol = np.stack([make_slice(s, size=64, level=0.6).hu for s in range(4)])
    write_dicom_series(vol, tmp_path / "series", spacing_mm=(2.5, 0.7, 0.7), shuffle_names=True)
    (tmp_path / "series" / "notes.txt").write_text("not dicom")
    viewer = make_napari_viewer()
    layers = viewer.open(tmp_path / "series", plugin=PLUGIN)
    assert len(layers) == 1 and len(viewer.layers) == 1
    layer = layers[0]
    assert layer.data.shape == (4, 64, 64)
    assert np.allclose(layer.scale, (2.5, 0.7, 0.7))
    assert np.array_equal(layer.data, np.round(vol).astype(np.float32))
    assert tuple(layer.contrast_limits) == MEDIASTINAL_WINDOW
    assert layer.metadata["series_uid"]


def test_reader_says_why_it_cannot_open_a_file(make_napari_viewer, tmp_path):
    """Chosen for a file it cannot read, the plugin names the file, the reason and napari's reader
    (not napari's bare "refused the file"); masks still reach the mask reader."""
    import imageio.v3 as iio

    png = tmp_path / "photo.png"
    iio.imwrite(png, np.zeros((8, 8), np.uint8))
    (tmp_path / "empty").mkdir()
    npz = tmp_path / "other.npz"
    np.savez(npz, a=np.zeros(3))
    viewer = make_napari_viewer()
    with pytest.raises(Exception, match=r"photo\.png: .*not a DICOM file.*plugin='napari'"):
        viewer.open(png, plugin=PLUGIN)
    with pytest.raises(Exception, match="(?i)no readable DICOM files found in folder"):
        viewer.open(tmp_path / "empty", plugin=PLUGIN)
    with pytest.raises(Exception, match="other.npz: .*'labels' and 'spacing_mm'"):
        viewer.open(npz, plugin=PLUGIN)
    assert len(viewer.layers) == 0
    assert get_reader(str(tmp_path / "mask.nii.gz")) is None  # left to the mask reader
    # DICOM written without the 128-byte preamble has no marker, yet still opens
    files = write_dicom_series(np.zeros((1, 16, 16), np.float32), tmp_path / "series", spacing_mm=(1.0, 1.0, 1.0))
    bare = tmp_path / "bare"
    bare.write_bytes(files[0].read_bytes()[132:])  # no preamble, no "DICM"
    layers = viewer.open(bare, plugin=PLUGIN)
    assert layers[0].data.shape == (16, 16)


def test_bad_series_gets_a_message_not_a_crash(make_napari_viewer, tmp_path):
    import pydicom

    vol = np.zeros((2, 16, 16), np.float32)
    files = write_dicom_series(vol, tmp_path / "dup", spacing_mm=(1.0, 1.0, 1.0))
    ds = pydicom.dcmread(files[1])
    ds.ImagePositionPatient = pydicom.dcmread(files[0]).ImagePositionPatient
    ds.save_as(files[1])
    viewer = make_napari_viewer()
    with pytest.raises(Exception, match="(?i)duplicate"):
        viewer.open(tmp_path / "dup", plugin=PLUGIN)
    assert len(viewer.layers) == 0


@pytest.mark.parametrize("suffix", [".npz", ".nii.gz"])
def test_mask_writer_round_trip_keeps_geometry(make_napari_viewer, tmp_path, suffix):
    viewer = make_napari_viewer()
    labels = np.zeros((3, 20, 24), np.uint8)
    labels[1, 5:9, 3:11] = 1
    labels[2, 0:4, 0:2] = 2
    layer = viewer.add_labels(labels, scale=(2.0, 0.6, 0.65), name="ref")
    path = tmp_path / f"ref{suffix}"
    layer.save(str(path), plugin=PLUGIN)
    back = viewer.open(path, plugin=PLUGIN)[0]
    assert np.array_equal(back.data, labels)
    assert np.allclose(back.scale, (2.0, 0.6, 0.65))


def test_viewer_draws_the_ct(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample(PLUGIN, "phantom_pair")
    shot = viewer.screenshot(canvas_only=True)
    assert shot.ndim == 3 and shot[..., :3].std() > 10, "the canvas came back blank"


def _seg_beside_ct(tmp_path):
    import numpy as np

    from napari_ctinterp.io import read_ct, save_mask, write_dicom_series
    from napari_ctinterp.phantom import make_slice

    write_dicom_series([make_slice(60 + z, size=64) for z in range(3)], tmp_path / "case" / "ct", seed=3)
    ct = read_ct(tmp_path / "case" / "ct")
    lab = np.zeros(ct.hu.shape, np.uint8)
    lab[1, 10:20, 10:30] = 1
    save_mask(lab, tmp_path / "case" / "seg" / "mask.dcm", spacing_mm=ct.spacing_mm, format="seg", reference=ct,
              names={1: "aorta"})
    return tmp_path / "case", lab


def test_a_seg_opens_on_the_ct_already_open_or_brings_its_ct_along(make_napari_viewer, tmp_path):
    import numpy as np

    case, lab = _seg_beside_ct(tmp_path)
    viewer = make_napari_viewer()
    viewer.open(str(case / "ct"), plugin=PLUGIN)
    assert len(viewer.layers) == 1
    viewer.open(str(case / "seg" / "mask.dcm"), plugin=PLUGIN)
    assert len(viewer.layers) == 2  # the open CT was used, not opened again
    seg = viewer.layers[-1]
    np.testing.assert_array_equal(np.asarray(seg.data), lab)
    assert tuple(seg.scale) == tuple(viewer.layers[0].scale) and "aorta" in seg.name
    assert list(seg.features["segment"]) == ["background", "aorta"]
    other = make_napari_viewer()
    other.open(str(case / "seg" / "mask.dcm"), plugin=PLUGIN)  # alone: its CT is found beside it
    assert [type(ly).__name__ for ly in other.layers] == ["Image", "Labels"]
    np.testing.assert_array_equal(np.asarray(other.layers[1].data), lab)


def test_the_writer_saves_a_painted_mask_as_a_seg_of_the_open_series(make_napari_viewer, tmp_path):
    import numpy as np

    from napari_ctinterp.io import load_mask, read_ct

    case, _ = _seg_beside_ct(tmp_path)
    viewer = make_napari_viewer()
    viewer.open(str(case / "ct"), plugin=PLUGIN)
    painted = np.zeros(viewer.layers[0].data.shape, np.uint8)
    painted[2, 30:40, 5:25] = 4
    layer = viewer.add_labels(painted, name="painted", scale=viewer.layers[0].scale)
    out = tmp_path / "back" / "painted.dcm"
    layer.save(str(out), plugin=PLUGIN)
    back = load_mask(out, reference=read_ct(case / "ct"))
    np.testing.assert_array_equal(back.labels, (painted > 0).astype(np.uint8))
    assert back.meta["segment_names"] == {1: "label 4"}


def test_the_seg_writer_refuses_to_guess_between_two_series_of_the_same_shape(make_napari_viewer, tmp_path):
    import numpy as np

    from napari_ctinterp.io import MaskIOError, write_dicom_series
    from napari_ctinterp.phantom import make_slice

    case, _ = _seg_beside_ct(tmp_path)
    write_dicom_series([make_slice(80 + z, size=64) for z in range(3)], tmp_path / "venous", seed=9)
    viewer = make_napari_viewer()
    viewer.open(str(case / "ct"), plugin=PLUGIN)
    viewer.open(str(tmp_path / "venous"), plugin=PLUGIN)
    layer = viewer.add_labels(np.ones(viewer.layers[0].data.shape, np.uint8), name="painted")
    from napari_ctinterp._writer import _painted_on

    with pytest.raises(MaskIOError, match="2 open DICOM series"):
        _painted_on(np.asarray(layer.data))
    with pytest.warns(UserWarning):  # napari's "not a valid writer"; our reason is a notification
        layer.save(str(tmp_path / "x.dcm"), plugin=PLUGIN)
    assert not (tmp_path / "x.dcm").exists()
    seg = viewer.open(str(case / "seg" / "mask.dcm"), plugin=PLUGIN)[0]  # names its series: no guessing
    seg.save(str(tmp_path / "again.dcm"), plugin=PLUGIN)
    assert (tmp_path / "again.dcm").exists()


def test_a_series_with_a_truncated_file_opens_with_that_slice_empty(make_napari_viewer, tmp_path):
    from pathlib import Path

    from napari_ctinterp._widgets.layer_choice import explainable, unreadable_slices
    from napari_ctinterp.io import CTReadWarning

    vol = np.stack([make_slice(40 + z, contrast=True, size=64).hu for z in range(4)])
    files = [Path(f) for f in write_dicom_series(vol, tmp_path / "series", spacing_mm=(2.5, 1.0, 1.0))]
    broken = files[2]
    broken.write_bytes(broken.read_bytes()[:-3000])  # the pixel data cut short, the header intact
    viewer = make_napari_viewer()
    with pytest.warns(CTReadWarning, match=broken.name):  # napari shows it as a notification
        viewer.open(tmp_path / "series", plugin=PLUGIN)
    (layer,) = viewer.layers
    assert layer.data.shape == (4, 64, 64)
    order = [Path(f).name for f in layer.metadata["files"]]
    z = order.index(broken.name)
    bad = unreadable_slices(layer)
    assert list(bad) == [z] and broken.name in bad[z]
    assert np.isnan(layer.data[z]).all() and np.isfinite(np.delete(np.asarray(layer.data), z, axis=0)).all()
    # the widgets leave it out of a volume's slices, and refuse it alone with the reason
    kept, note = explainable(layer, list(range(4)))
    assert kept == [k for k in range(4) if k != z] and str(z) in note
    with pytest.raises(ValueError, match=broken.name):
        explainable(layer, [z])


def test_a_series_none_of_whose_files_decode_is_refused(make_napari_viewer, tmp_path):
    from pathlib import Path

    files = [Path(f) for f in write_dicom_series(np.zeros((2, 32, 32), np.float32), tmp_path / "s",
                                                  spacing_mm=(1.0, 1.0, 1.0))]
    for f in files:
        f.write_bytes(f.read_bytes()[:-1000])
    viewer = make_napari_viewer()
    with pytest.warns(Warning), pytest.raises(Exception, match="no slice of this series could be decoded"):
        viewer.open(tmp_path / "s", plugin=PLUGIN)
    assert len(viewer.layers) == 0
