"""Session-wide test settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _measured_costs_in_a_temporary_folder(tmp_path_factory):
    """The Explain widget records each run's pace (``jobs.estimate``); tests keep theirs out of the
    user's cache folder."""
    mp = pytest.MonkeyPatch()
    mp.setenv("NAPARI_CTINTERP_CACHE", str(tmp_path_factory.mktemp("ctinterp-cache")))
    yield
    mp.undo()
