"""``ctinterp demo``: napari with the phantom pair loaded and every widget of the plugin docked.

The one module of the command line that opens napari (the viewer's launcher; the import-linter
contract that keeps napari out of the core names it as its only exception).
"""

from __future__ import annotations

import argparse

PLUGIN = "napari-ctinterp"


def cmd_demo(args: argparse.Namespace) -> int:
    """Open napari with the phantom pair loaded and every widget of the plugin docked."""
    import napari
    from npe2 import PluginManager

    viewer = napari.Viewer(title="napari-ctinterp demo", show=not args.screenshot)
    viewer.open_sample(PLUGIN, "phantom_pair")
    manifest = PluginManager.instance().get_manifest(PLUGIN)
    docks = [viewer.window.add_plugin_dock_widget(PLUGIN, widget.display_name, tabify=i > 0)[0]
             for i, widget in enumerate(manifest.contributions.widgets or [])]
    if docks:
        docks[0].raise_()  # the first step (Classify) on top, not the last tab docked
    if args.screenshot:
        viewer.window._qt_window.resize(1600, 1000)
        viewer.window.show()
        from qtpy.QtWidgets import QApplication

        for _ in range(20):
            QApplication.processEvents()
        viewer.screenshot(args.screenshot, canvas_only=False)
        print(f"screenshot written to {args.screenshot}")
        viewer.close()
        return 0
    napari.run()
    return 0
