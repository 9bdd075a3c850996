"""Does a model read the planted marker? Interventions on fresh phantom slices.

A model's reliance on a marker is a fact to verify, not to assume: the same fresh slice is shown
with and without a marker, with the marker moved, and with the marker removed (inpainted with the
tissue around it, ``phantom.inpaint``), and the answers are compared. ``demo-shortcut`` must follow
the marker where marker and contrast disagree and fall to chance when the marker is removed; the
bundled ``demo`` must not care (issue 31).

The set (``marker_slices``): ``n`` fresh slices (test seed range), contrast on every other one.
Each is rendered once without a marker (``plain``); ``marked`` adds a marker (the kinds in turn),
``moved`` the same kind drawn from another seed (another place, size and HU), ``removed`` inpaints
the marked one. "Disagreeing" slices: the no-contrast slices with their marker and the contrast
slices without one — the marker says the opposite of the contrast on every one of them.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..model.classifier import Classifier


@dataclass(frozen=True)
class MarkerSlices:
    """Fresh slices in four versions, (N, H, W) HU each, and their contrast (N,) bool and marker kinds."""

    plain: np.ndarray
    marked: np.ndarray
    moved: np.ndarray
    removed: np.ndarray
    contrast: np.ndarray
    kinds: tuple[str, ...]

    @property
    def disagreeing(self) -> np.ndarray:
        """(N, H, W): the marked no-contrast slices and the plain contrast slices."""
        return np.where(self.contrast[:, None, None], self.plain, self.marked)

    @property
    def marker_removed(self) -> np.ndarray:
        """(N, H, W): ``disagreeing`` with every marker removed (inpainted)."""
        return np.where(self.contrast[:, None, None], self.plain, self.removed)


def _render(args: tuple[int, bool, str, int, int]) -> tuple[np.ndarray, ...]:
    from ..phantom import add_marker, inpaint, make_slice

    seed, contrast, kind, move_seed, size = args
    plain = make_slice(seed, contrast=contrast, size=size)
    marked = add_marker(plain, kind)
    moved = add_marker(plain, kind, seed=move_seed)
    removed = inpaint(marked.hu, marked.marker_mask, noise_sd=float(plain.meta["noise_sd_hu"]), seed=seed)
    return plain.hu, marked.hu, moved.hu, removed


def marker_slices(n: int, *, seed: int = 0, size: int = 512, workers: int = 1) -> MarkerSlices:
    """``n`` fresh slices from the test seed range (``seed`` picks them) in the four versions
    (see the module docstring), rendered in ``workers`` processes."""
    from ..model.datasets import SEED_RANGES
    from ..phantom import MARKER_KINDS

    lo, hi = SEED_RANGES["test"]
    rng = np.random.default_rng([seed, 31])
    seeds = rng.choice(np.arange(lo, hi), size=2 * n, replace=False)
    kinds = tuple(MARKER_KINDS[(i // 2) % len(MARKER_KINDS)] for i in range(n))
    jobs = [(int(seeds[i]), bool(i % 2), kinds[i], int(seeds[n + i]), size) for i in range(n)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            out = list(ex.map(_render, jobs, chunksize=4))
    else:
        out = [_render(j) for j in jobs]
    plain, marked, moved, removed = (np.stack([o[k] for o in out]).astype(np.float32) for k in range(4))
    return MarkerSlices(plain, marked, moved, removed, np.array([j[1] for j in jobs]), kinds)


@dataclass(frozen=True)
class Interventions:
    """A model's answers under the interventions (fractions of the ``n`` slices).

    Attributes
    ----------
    n : int
    follows_marker : float
        On the disagreeing slices: answer = "contrast" exactly where a marker is.
    accuracy_disagreeing, accuracy_marker_removed : float
        Accuracy against the true contrast on the disagreeing slices, and with their markers removed.
    changed_by_adding, changed_by_moving, changed_by_removing : float
        Answers that change from ``plain`` to ``marked``, from ``marked`` to ``moved``, and from
        ``marked`` to ``removed``.
    by_kind : dict
        ``follows_marker`` per marker kind.
    """

    n: int
    follows_marker: float
    accuracy_disagreeing: float
    accuracy_marker_removed: float
    changed_by_adding: float
    changed_by_moving: float
    changed_by_removing: float
    by_kind: dict


def interventions(clf: Classifier, s: MarkerSlices, *, batch_size: int = 16) -> Interventions:
    """The answers of a two-class contrast model (``clf``) on ``s`` under every intervention."""
    if clf.card.n_classes != 2:
        raise ValueError("the marker interventions compare contrast answers: a two-class (contrast) model is needed")
    pos = clf.card.positive_index

    def says_contrast(hu: np.ndarray) -> np.ndarray:
        x = clf.preprocess(hu)
        return (clf.predicted(clf.logits(x, batch_size=batch_size)) == pos).cpu().numpy()

    plain, marked, moved, removed = (says_contrast(a) for a in (s.plain, s.marked, s.moved, s.removed))
    c = s.contrast
    disagree = np.where(c, plain, marked)  # the answer on each disagreeing slice
    gone = np.where(c, plain, removed)
    kinds = np.array(s.kinds)
    follows = disagree == ~c  # "contrast" where the marker is, i.e. on the no-contrast slices
    return Interventions(
        n=len(c), follows_marker=float(follows.mean()), accuracy_disagreeing=float((disagree == c).mean()),
        accuracy_marker_removed=float((gone == c).mean()), changed_by_adding=float((plain != marked).mean()),
        changed_by_moving=float((marked != moved).mean()), changed_by_removing=float((marked != removed).mean()),
        by_kind={k: float(follows[kinds == k].mean()) for k in sorted(set(s.kinds))})
