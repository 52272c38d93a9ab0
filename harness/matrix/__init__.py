"""The matrix: one notebook (or several: notebooks x images) run in every Colab image's environment, in
parallel (run.py).

What each run's report says, and the matrix's own reports, are harness/report/'s
(matrix_records.py, matrix_reports.py, matrix_html.py, junit.py); the ``matrix`` verb's arguments
are parsed in harness/cli/images.py.
"""
