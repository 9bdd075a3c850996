"""What the Classify and Explain widgets say beside an answer about whether to trust it.

Two things make an answer (and its maps) meaningless: an image that is not CT (its values are not
Hounsfield units: the napari reader marks such layers ``metadata["not_hu"]``), and a slice unlike
the model's training data (the out-of-domain check, :mod:`napari_ctinterp.model.domain`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["few_slices", "not_hu_text", "show_trust", "trust_text"]

#: How a warning line looks beside an answer (a plain line otherwise): amber and bold, so it is
#: not read as part of the answer.
WARNING_STYLE = "color: #ffb000; font-weight: bold;"


def few_slices(zs: list) -> str:
    """``[3, 4, 9]`` → ``"z 3, 4, 9"``; more than six: the first six and a count."""
    shown = ", ".join(str(z) for z in zs[:6] if z is not None)
    return f"z {shown}" + (f" … +{len(zs) - 6}" if len(zs) > 6 else "")


def not_hu_text(layer: Any) -> str | None:
    """The warning for a layer read from a non-CT series, or None."""
    meta = getattr(layer, "metadata", None) or {}
    if not meta.get("not_hu"):
        return None
    return (f"⚠ Not CT — this image is modality {meta.get('modality') or 'unknown'}: its values are not Hounsfield "
            "units, so the answer and maps mean nothing.")


def trust_text(domain: dict, layer: Any = None) -> str | None:
    """The line shown under a result: non-CT warning, then the domain check's verdict.

    Parameters
    ----------
    domain : dict
        Slice index (None for a 2-D image) → :class:`~napari_ctinterp.model.domain.DomainCheck`.
    layer : napari layer, optional
        The CT layer the answer is for (its ``not_hu`` metadata).

    Returns
    -------
    str or None
        None when there is nothing to say.
    """
    lines = [t for t in (not_hu_text(layer),) if t]
    checks = list(domain.values())
    out = [k for k, c in domain.items() if c.in_domain is False]
    if out:
        where = "this slice" if len(checks) == 1 else f"{len(out)} of {len(checks)} slices ({few_slices(out)})"
        c = domain[out[0]]
        lines.append(f"⚠ Out of domain — {where}: unlike the model's training data; its answer and maps may not "
                     f"mean anything (score {c.score:.2f} > threshold {c.threshold:.2f})")
    elif checks and all(c.in_domain is None for c in checks):
        lines.append(f"domain check: {checks[0].reason}")
    elif checks:
        lines.append(f"in the model's domain ({checks[0].reason})" if len(checks) == 1 else
                     f"all {len(checks)} slices in the model's domain")
    return "\n".join(lines) or None


def show_trust(label: Any, text: str | None) -> None:
    """Put ``trust_text``'s line in ``label`` (hidden when None), styled as a warning when it is one."""
    label.visible = text is not None
    if text is None:
        return
    label.value = text
    label.native.setStyleSheet(WARNING_STYLE if text.startswith("⚠") or "\n⚠" in text else "")
