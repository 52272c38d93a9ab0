"""Floor 1: reading a notebook's source without running it: its install cells and their pip arguments
(``installs``, ``pip_command``), its imports (``needs``, ``import_names``), what it says about itself
(``notebook_config``) and its parameters on the command line (``parameters``). Imports only
``harness.core``."""
