"""Screenshots of the warnings beside an answer (docs/img/explain_out_of_domain.png, classify_not_ct.png,
classify_out_of_domain.png).

Fresh process each (the widget docked first): Explain on pydicom's CT_small.dcm with the demo model
(out of domain); Classify on an MR series (pydicom's MR_small.dcm, opened by the plugin's reader):
    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/trust_screenshots.py explain docs/img
    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/trust_screenshots.py classify docs/img
    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/trust_screenshots.py classify-ct docs/img
(the last: Classify on CT_small.dcm, a real CT unlike the demo's phantom).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import napari

sys.path.insert(0, str(Path(__file__).parent))
from tutorial_screenshots import PLUGIN, pump, wait  # noqa: E402


def explain(out: Path) -> None:
    viewer = napari.Viewer(title="napari-ctinterp: out of domain")
    viewer.window._qt_window.resize(1920, 1080)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Explain")
    pump()
    viewer.open_sample(PLUGIN, "ct_small")
    widget.layer.value = viewer.layers[-1]
    for m, box in widget.methods.items():
        box.value = m in ("BP", "IGB")
    widget.variants["SG"].value = widget.variants["SG2"].value = False
    widget.run()
    wait(lambda: widget.run_button.enabled)
    print("status:", widget.status.value)
    print("domain:", widget.domain.value)
    pump(1)
    viewer.screenshot(str(out / "explain_out_of_domain.png"), canvas_only=False)


def classify(out: Path, name: str = "MR_small.dcm", png: str = "classify_not_ct.png") -> None:
    from pydicom.data import get_testdata_file

    viewer = napari.Viewer(title=f"napari-ctinterp: {name}")
    viewer.window._qt_window.resize(1920, 1080)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Classify")
    pump()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        viewer.open(get_testdata_file(name, download=False), plugin=PLUGIN)
    print("reader warnings:", [str(w.message)[:90] for w in caught])
    widget.layer.value = viewer.layers[-1]
    widget.classify()
    wait(lambda: widget.run_button.enabled)
    print("layer:", viewer.layers[-1].name)
    print("result:", widget.result.value)
    print("domain:", widget.domain.value)
    pump(1)
    viewer.screenshot(str(out / png), canvas_only=False)


def classify_ct(out: Path) -> None:
    classify(out, "CT_small.dcm", "classify_out_of_domain.png")


if __name__ == "__main__":
    which, folder = sys.argv[1], Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    {"explain": explain, "classify": classify, "classify-ct": classify_ct}[which](folder)
