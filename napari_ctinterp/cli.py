"""``ctinterp`` command line: ``demo`` opens napari with the plugin ready; more commands follow.

Each sub-command imports what it needs lazily, so ``ctinterp --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

PLUGIN = "napari-ctinterp"


def _cmd_demo(args: argparse.Namespace) -> int:
    """Open napari with the phantom pair loaded and every widget of the plugin docked."""
    import napari
    from npe2 import PluginManager

    viewer = napari.Viewer(title="napari-ctinterp demo", show=not args.screenshot)
    viewer.open_sample(PLUGIN, "phantom_pair")
    manifest = PluginManager.instance().get_manifest(PLUGIN)
    for widget in manifest.contributions.widgets or []:
        viewer.window.add_plugin_dock_widget(PLUGIN, widget.display_name)
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


def build_parser() -> argparse.ArgumentParser:
    """The ``ctinterp`` argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="ctinterp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="open napari with the demo data and the plugin's widgets")
    demo.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the window and exit")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ctinterp`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
