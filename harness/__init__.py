"""colab-ci harness: run a notebook headlessly, observe its install cells, check, report.

Data flows one way: image profile -> environment -> execution -> observations (records.py) ->
checks -> report/alert. See docs/architecture.md.
"""

__version__ = "0.2.0"

import sys

# jsonschema imports rfc3987_syntax where it is installed (jupyter's "format" extras bring it) to check
# the "iri" string formats, and that import compiles a grammar: 1.4 s of CPU in every colab-ci process
# that reads a JSON file, which is nearly all of them. colab-ci's schemas check no string formats (no
# FormatChecker anywhere), so jsonschema is told the module is absent, which it handles.
sys.modules.setdefault("rfc3987_syntax", None)   # type: ignore[arg-type]
