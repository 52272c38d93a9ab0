"""colab-ci harness: run a notebook headlessly, observe its install cells, check, report.

Data flows one way: image profile -> environment -> execution -> observations (records.py) ->
checks -> report/alert. See docs/architecture.md.
"""

__version__ = "0.2.0"
