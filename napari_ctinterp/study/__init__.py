"""Batch studies: the comparison over a whole data set, in-process or on Dask, resumable, with a report.

``study.run_study(StudyConfig(...), out_dir)``; the CLI is ``ctinterp study``.
"""

from .config import StudyConfig
from .data import SliceRef, demo_slices, folder_slices
from .runner import run_study
from .slice_task import run_slice

__all__ = ["SliceRef", "StudyConfig", "demo_slices", "folder_slices", "run_slice", "run_study"]
