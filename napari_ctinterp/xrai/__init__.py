"""XRAI: multi-scale segmentation and region attribution (as PAIR ``saliency`` 0.2.1, faster), in 2D
and over 3D supervoxels.

``seg = xrai.segment(hu)`` once per image (``xrai.segment(volume, spacing_mm=(z, y, x))`` once per
volume); ``xrai.region_map(abs_map, seg)`` per map.
"""

from .regions import region_map
from .segments import PAIR_SCALES, segment
from .segments_3d import VOLUME_SCALES_MM, segment_volume
from .types import RegionMap, Segments

__all__ = ["PAIR_SCALES", "VOLUME_SCALES_MM", "RegionMap", "Segments", "region_map", "segment", "segment_volume"]
