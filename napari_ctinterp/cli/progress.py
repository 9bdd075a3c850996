"""The command line's progress bars: tqdm adapters of the one progress protocol
(``napari_ctinterp.progress``)."""

from __future__ import annotations

from ..progress import Progress


def tqdm_progress(desc: str, unit: str = "slice") -> Progress:
    """A ``progress(done, total, phase)`` callable that draws a tqdm bar (made at the first call,
    closed when ``done`` reaches ``total``)."""
    from tqdm import tqdm

    bars: dict = {}

    def report(done: int, total: int, phase: str = "") -> None:
        bar = bars.get("bar")
        if bar is None:
            bar = bars["bar"] = tqdm(total=total, desc=desc, unit=unit)
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return report
