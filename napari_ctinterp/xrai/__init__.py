"""XRAI: multi-scale segmentation and region attribution (as PAIR ``saliency`` 0.2.1, faster).

``seg = xrai.segment(hu)`` once per image; ``xrai.region_map(abs_map, seg)`` per map.
"""

from .regions import RegionMap, region_map
from .segments import PAIR_SCALES, Segments, segment

__all__ = ["PAIR_SCALES", "RegionMap", "Segments", "region_map", "segment"]
