"""Which distribution of an image provides an imported module: ``import sklearn`` -> scikit-learn.

Most distributions are imported under their own name (``pandas``, ``transformers``; ``huggingface_hub``
is ``huggingface-hub`` once canonicalized), so that is tried first, against the image's own
distributions. The others are listed here (``IMPORT_NAMES``, import name -> the distributions that
provide it, most usual first), taken from the ``top_level.txt``/``RECORD`` of the distributions Colab
pre-installs. A dotted name matches its longest listed prefix, so ``google.cloud.storage`` and
``google.colab`` resolve to different distributions; ``google.cloud.X`` not listed is tried as
``google-cloud-X``.

A name that none of this resolves is reported, never guessed: the mirror then lacks it, and the
fidelity report says so (``images build`` names it, ``--with DIST`` adds it).
"""

from __future__ import annotations

import sys

from packaging.utils import canonicalize_name

# import name -> distributions that provide it (the first the image has is taken)
IMPORT_NAMES: dict[str, tuple[str, ...]] = {
    "PIL": ("pillow",),
    "IPython": ("ipython",),
    "sklearn": ("scikit-learn",),
    "skimage": ("scikit-image",),
    "cv2": ("opencv-python", "opencv-contrib-python", "opencv-python-headless", "opencv-contrib-python-headless"),
    "yaml": ("pyyaml",),
    "bs4": ("beautifulsoup4",),
    "dateutil": ("python-dateutil",),
    "dotenv": ("python-dotenv",),
    "attr": ("attrs",),
    "jwt": ("pyjwt",),
    "git": ("gitpython",),
    "zmq": ("pyzmq",),
    "socks": ("pysocks",),
    "sockshandler": ("pysocks",),
    "dns": ("dnspython",),
    "websocket": ("websocket-client",),
    "OpenSSL": ("pyopenssl",),
    "Crypto": ("pycryptodome",),
    "Cryptodome": ("pycryptodomex",),
    "fitz": ("pymupdf",),
    "pymupdf": ("pymupdf",),
    "docx": ("python-docx",),
    "pptx": ("python-pptx",),
    "magic": ("python-magic",),
    "slugify": ("python-slugify",),
    "snappy": ("python-snappy",),
    "multipart": ("python-multipart",),
    "pythonjsonlogger": ("python-json-logger",),
    "box": ("python-box",),
    "community": ("python-louvain",),
    "umap": ("umap-learn",),
    "tables": ("tables",),
    "Bio": ("biopython",),
    "sentence_transformers": ("sentence-transformers",),
    "tf_keras": ("tf-keras",),
    "keras_hub": ("keras-hub",),
    "keras_nlp": ("keras-nlp",),
    "tensorflow_decision_forests": ("tensorflow-decision-forests",),
    "absl": ("absl-py",),
    "pkg_resources": ("setuptools",),
    "mpl_toolkits": ("matplotlib",),
    "pylab": ("matplotlib",),
    "serial": ("pyserial",),
    "usb": ("pyusb",),
    "MySQLdb": ("mysqlclient",),
    "psycopg2": ("psycopg2", "psycopg2-binary"),
    "sqlalchemy": ("sqlalchemy",),
    "lxml": ("lxml",),
    "markdown": ("markdown",),
    "ruamel": ("ruamel-yaml",),
    "cupy": ("cupy-cuda12x", "cupy-cuda11x"),
    "cudf": ("cudf-cu12",),
    "cuml": ("cuml-cu12",),
    "cugraph": ("cugraph-cu12",),
    "rmm": ("rmm-cu12",),
    "jaxlib": ("jaxlib",),
    "tree": ("dm-tree",),
    "sentencepiece": ("sentencepiece",),
    "Levenshtein": ("levenshtein",),
    "gi": ("pygobject",),
    "cairo": ("pycairo",),
    "apt": ("python-apt",),
    "osgeo": ("gdal",),
    "google.colab": ("google-colab",),
    "google.protobuf": ("protobuf",),
    "google.auth": ("google-auth",),
    "google.oauth2": ("google-auth",),
    "google_auth_oauthlib": ("google-auth-oauthlib",),
    "google_auth_httplib2": ("google-auth-httplib2",),
    "googleapiclient": ("google-api-python-client",),
    "google.api_core": ("google-api-core",),
    "google.genai": ("google-genai",),
    "google.generativeai": ("google-generativeai",),
    "google.ai.generativelanguage": ("google-ai-generativelanguage",),
    "google.adk": ("google-adk",),
    "google.cloud.aiplatform": ("google-cloud-aiplatform",),
    "vertexai": ("google-cloud-aiplatform",),
    "google.resumable_media": ("google-resumable-media",),
    "google_crc32c": ("google-crc32c",),
    "pasta": ("google-pasta",),
    "en_core_web_sm": ("en-core-web-sm",),
    "typing_extensions": ("typing-extensions",),
}


def is_standard_library(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names


def distribution_of(module: str, image: dict[str, str] | None = None,
                    provided: dict[str, tuple[str, ...]] | None = None) -> str | None:
    """The distribution of ``image`` (canonical name -> version) that provides ``module``, or None.

    ``provided``: the image's own import-name map (import name -> distributions, read from their wheels:
    ``harness.images.shipped_metadata``), asked first. Without ``image``: the distribution that usually
    provides it (for the kernel's own imports)."""
    def present(name: str) -> bool:
        return image is None or canonicalize_name(name) in image

    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        if provided and (found := _provider(prefix, [d for d in provided.get(prefix, ()) if present(d)])):
            return found
        listed = IMPORT_NAMES.get(prefix)
        if listed:
            found = next((d for d in listed if present(d)), None)
            if found is not None:
                return canonicalize_name(found)
    if parts[0] == "google" and len(parts) >= 2:
        # google.cloud.storage -> google-cloud-storage; google.X -> google-X
        for candidate in (f"google-cloud-{parts[2]}" if parts[1] == "cloud" and len(parts) > 2 else "",
                          f"google-{parts[1]}"):
            if candidate and present(candidate):
                return canonicalize_name(candidate)
        return None
    own = canonicalize_name(parts[0])
    return own if present(own) else None


def _provider(module: str, candidates: list[str]) -> str | None:
    """Of the image's distributions that provide ``module``, the usual one: the table's first listed,
    else the one named as the module, else the first by name."""
    if not candidates:
        return None
    names = [canonicalize_name(c) for c in candidates]
    usual = [canonicalize_name(d) for d in IMPORT_NAMES.get(module, ())]
    return next((d for d in usual if d in names), None) or (
        canonicalize_name(module) if canonicalize_name(module) in names else sorted(names)[0])
