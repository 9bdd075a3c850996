"""``python -m napari_ctinterp.cli``."""

import sys

from . import main

sys.exit(main())
