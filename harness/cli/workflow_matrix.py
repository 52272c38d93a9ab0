"""``python -m harness.cli.workflow_matrix``: the GitHub Actions job matrix, as the workflows' setup jobs ask
for it (harness/images/workflow_matrix.py says which images and tiers, and why).

Prints ``key=value`` lines for ``$GITHUB_OUTPUT``; exit 2, one sentence on stderr naming the file and
field, when the images list or the notebook cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.json_files import read_json
from harness.core.verdicts import EXIT_HARNESS, EXIT_OK
from harness.images.workflow_matrix import notebook_tiers, outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.cli.workflow_matrix", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images-json", type=Path, required=True, help="output of harness images list --json")
    parser.add_argument("--event", required=True, help="github.event_name")
    parser.add_argument("--images", default="", help="workflow_dispatch input: image names (empty = all)")
    parser.add_argument("--tiers", default="", help="workflow_dispatch input: tiers, e.g. 1,2,3")
    parser.add_argument("--notebook", type=Path, default=None,
                        help="the notebook whose declared tiers (metadata.colab_ci.tiers) --tiers picks from")
    args = parser.parse_args(argv)
    try:
        images = read_json(args.images_json, "images-list")   # JsonFileError (a HarnessError) names the field
        for key, value in outputs(images, args.event, args.images, args.tiers, notebook_tiers(args.notebook)).items():
            print(f"{key}={value}")
    except HarnessError as exc:     # a JsonFileError names the file and the field itself
        print(f"workflow_matrix: {exc}", file=sys.stderr)
        return EXIT_HARNESS
    except (OSError, ValueError) as exc:
        print(f"workflow_matrix: cannot read {args.images_json}: {exc}", file=sys.stderr)
        return EXIT_HARNESS
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
