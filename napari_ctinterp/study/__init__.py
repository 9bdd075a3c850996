"""Batch studies: the comparison over a whole data set, in-process or on Dask, resumable, with a report.

``study.run_study(StudyConfig(...), out_dir)``; the CLI is ``ctinterp study``. A 3D model's study
(card ``spatial_dims`` 3) runs on whole series (``SeriesRef``, ``run_series``). Which method
wins, with statistics: ``study.compare_methods(table, score="auc")``.
"""

from .compare import Comparison, cd_diagram, compare_methods
from .config import StudyConfig
from .data import SliceRef, demo_slices, folder_slices
from .runner import run_study
from .series_data import SeriesRef, folder_series
from .series_task import run_series
from .slice_task import run_slice

__all__ = ["Comparison", "SeriesRef", "SliceRef", "StudyConfig", "cd_diagram", "compare_methods", "demo_slices",
           "folder_series", "folder_slices", "run_series", "run_slice", "run_study"]
