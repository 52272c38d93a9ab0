"""The launch path in a real browser: JupyterLab locally, Colab where the network allows."""
