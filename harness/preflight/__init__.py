"""The preflight: predict, without running the notebook, what each of its installs would change in
each Colab image, and whether that corrupts the live kernel.

It owns resolution (``resolve``: asking pip and uv per install; ``resolver_output``: reading what
they say; ``no_deps``: an install judged from its words), explanation (``explain``: additions,
replacements and the chains that pull them), fixes (``fixes``: a release that fits; ``guard``: what
the notebook's guard does), the verdicts (``model``), the run over images and installs
(``evaluate``), rendering (``render``) and ``preflight.json`` / ``preflight.md`` (``document``).

It may import core, the notebook's source (installs, pip's arguments, needs), images, execution's
kernel environment and observations; never report, matrix, the CLI or anything above them.
Import from the modules; nothing is re-exported here.
"""
