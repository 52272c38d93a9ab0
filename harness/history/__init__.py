"""Trends over past runs and the newest run's timing outliers.

``series.py`` reads past runs, ``outliers.py`` judges a timing against the runs before it,
``trends.py`` builds the history, ``render.py`` renders it, ``outputs.py`` writes its files and
stores the newest run. The ``history`` verb is harness/cli/history.py.
"""
