"""Render a study's report.html to PNG with headless Chromium, to look at it as a reader would.

    python scripts/render_report.py RUN_DIR/report.html OUT.png [--width 1280] [--pages]

Chromium takes a screenshot of a tall window; the blank bottom is cropped. ``--pages`` also writes
OUT-1.png, OUT-2.png, … one screen (``--width`` × 0.75 · ``--width``) each, the way a reader scrolls.
Needs Debian's ``chromium`` (``apt-get install chromium``); not part of the test suite's set-up.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def render(report: Path, out: Path, width: int = 1280, height: int = 20000) -> Path:
    """Screenshot ``report`` at ``width`` px; crop the blank bottom; return ``out``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on PATH: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--no-first-run", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--screenshot={out}", report.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
    img = np.asarray(Image.open(out).convert("L"))
    rows = np.flatnonzero((img < 250).any(axis=1))
    bottom = int(rows[-1]) + 40 if len(rows) else img.shape[0]
    Image.open(out).crop((0, 0, width, min(bottom, img.shape[0]))).save(out)
    return out


def pages(image: Path, width: int) -> list[Path]:
    """Cut ``image`` into screens of ``width`` × 0.75 · ``width``."""
    img = Image.open(image)
    h = int(0.75 * width)
    out = []
    for k, top in enumerate(range(0, img.height, h), start=1):
        path = image.with_name(f"{image.stem}-{k}{image.suffix}")
        img.crop((0, top, img.width, min(top + h, img.height))).save(path)
        out.append(path)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--pages", action="store_true")
    args = ap.parse_args()
    path = render(args.report, args.out, args.width)
    height = Image.open(path).height
    print(f"{path}: {args.width} × {height} px")
    if args.pages:
        for p in pages(path, args.width):
            print(p)


if __name__ == "__main__":
    main()
