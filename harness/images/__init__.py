"""Colab image profiles (from a pip freeze) and the uv environments that mirror them."""
