"""Errors and warnings raised by :mod:`napari_ctinterp.io`, and codec install hints.

Every message says what went wrong *and* what to do about it, because the person who reads it is
usually looking at a napari notification, not a traceback.
"""

from __future__ import annotations

from pydicom.uid import UID

__all__ = [
    "CTReadError",
    "CTReadWarning",
    "MaskIOError",
    "codec_install_hint",
]


class CTReadError(ValueError):
    """A CT (DICOM) input that cannot be turned into a volume; the message says how to fix it."""


class CTReadWarning(UserWarning):
    """Something about a CT input was unusual but it could still be read (see ``meta["warnings"]``)."""


class MaskIOError(ValueError):
    """A mask file or array that cannot be saved or loaded; the message says why."""


_J2K = "pip install pylibjpeg pylibjpeg-openjpeg"
_LIBJPEG = "pip install pylibjpeg pylibjpeg-libjpeg"
_RLE = "pip install pylibjpeg pylibjpeg-rle"

# Keyword of the transfer syntax -> command that installs a decoder for it.
_DECODE_HINTS: dict[str, str] = {
    "JPEG2000Lossless": _J2K,
    "JPEG2000": _J2K,
    "JPEG2000MCLossless": _J2K,
    "JPEG2000MC": _J2K,
    "HTJ2KLossless": _J2K,
    "HTJ2KLosslessRPCL": _J2K,
    "HTJ2K": _J2K,
    "JPEGLSLossless": _LIBJPEG + "  (or: pip install pyjpegls)",
    "JPEGLSNearLossless": _LIBJPEG + "  (or: pip install pyjpegls)",
    "JPEGBaseline8Bit": _LIBJPEG,
    "JPEGExtended12Bit": _LIBJPEG,
    "JPEGLossless": _LIBJPEG,
    "JPEGLosslessSV1": _LIBJPEG,
    "RLELossless": _RLE,
}

# Encoders differ from decoders: only pyjpegls writes JPEG-LS, only openjpeg writes JPEG 2000.
_ENCODE_HINTS: dict[str, str] = {
    "JPEG2000Lossless": _J2K,
    "JPEGLSLossless": "pip install pyjpegls",
    "RLELossless": "pip install numpy  (or: pip install pylibjpeg pylibjpeg-rle)",
}

_FALLBACK = "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle"


def codec_install_hint(transfer_syntax: str | UID, *, encode: bool = False) -> str:
    """Return the ``pip install ...`` command that provides a codec for a transfer syntax.

    Parameters
    ----------
    transfer_syntax : str or pydicom.uid.UID
        Transfer syntax UID (e.g. ``"1.2.840.10008.1.2.4.90"``).
    encode : bool, optional
        If True, the hint is for *writing* (compressing) rather than reading.

    Returns
    -------
    str
        A shell command, e.g. ``"pip install pylibjpeg pylibjpeg-openjpeg"``.
    """
    keyword = UID(str(transfer_syntax)).keyword
    hints = _ENCODE_HINTS if encode else _DECODE_HINTS
    return hints.get(keyword, _FALLBACK)
