"""Batch studies: the comparison over a whole data set, in-process or on Dask, resumable, with a report.

``study.run_study(StudyConfig(...), out_dir)``; the CLI is ``ctinterp study``. A 3D model's study
(card ``spatial_dims`` 3) runs on whole series (``SeriesRef``, ``run_series``).
"""

from .config import StudyConfig
from .data import SliceRef, demo_slices, folder_slices
from .runner import run_study
from .series_data import SeriesRef, folder_series
from .series_task import run_series
from .slice_task import run_slice

__all__ = ["SeriesRef", "SliceRef", "StudyConfig", "demo_slices", "folder_series", "folder_slices", "run_series",
           "run_slice", "run_study"]
