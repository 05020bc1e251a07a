"""The fuzz targets import their shared pieces from fuzzing.py beside them (tests are not a package and
run with --import-mode=importlib, so this folder is put on the path here, before they are imported)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
