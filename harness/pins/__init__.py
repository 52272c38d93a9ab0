"""The pin finder: for the requirements of a notebook's install cells (read as preflight reads them,
``harness.source.installs``), the newest versions that move no distribution an image pre-installs.

``search`` asks the resolver per image (preflight's machinery, ``harness.preflight.resolve``, against the
image's metadata environment with its freeze as constraints); ``combine`` makes one pin set for every
chosen image, or pins with environment markers; ``rewrite`` puts them into the install cells (or a
requirements file); ``check`` hands the result to preflight before it is offered; ``render`` writes
``pins.md`` / ``pins.json``; ``model`` holds what they say.

It stands above preflight and imports it; nothing below imports it. Import from the modules.
"""
