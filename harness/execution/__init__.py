"""Run a notebook with papermill in a disposable copy of an environment, probes around install cells."""
