"""colab-ci's headless stand-in for ``google.colab`` (see harness/execution/colab_emulation/README.md).

The submodules notebooks use are importable as on Colab (``from google.colab import drive``); each
call is recorded (``_colab_ci.record``) in the output of the cell that made it.
"""

from google.colab import _colab_ci, auth, data_table, drive, files, output, patches, runtime, userdata  # noqa: F401

__version__ = "0.0.1+colab-ci"
HEADLESS = True   # not on Colab: a notebook may test ``getattr(google.colab, "HEADLESS", False)``

__all__ = ["auth", "data_table", "drive", "files", "output", "patches", "runtime", "userdata"]
