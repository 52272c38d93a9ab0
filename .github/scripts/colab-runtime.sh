#!/usr/bin/env bash
# The notebook inside Colab's own runtime container: the one place colab-ci runs against the real image
# rather than a mirror of it. Called by the workflow's `colab-runtime` job and by `make colab-runtime`,
# so both run exactly this.
#
#   .github/scripts/colab-runtime.sh            (from the repository root)
#
# Environment (all optional):
#   COLAB_RUNTIME_IMAGE  the image (default: Colab's CPU runtime, :latest is what Colab runs today)
#   NOTEBOOK             the notebook, relative to the repository root (default: notebook/template.ipynb)
#   OUT                  where the reports go, relative to the repository root (default: out/colab-runtime)
#   TIMEOUT              seconds the run may take before the harness ends it and writes its reports (5400)
#   PARAMETERS           NAME=VALUE words passed as -p (the workflow's tier switches)
#   UV                   the uv binary mounted into the container (default: uv on PATH, else .venv/bin/uv)
#
# Inside the container (colab-runtime-inside.sh) the harness gets a venv of its own and runs the kernel
# with `--in-place` on the image's own python3: an install cell really replaces Colab's pre-installed
# packages there, as it would in Colab. The image's COLAB_RELEASE_TAG is in the container's
# environment, and COLAB_CI_IMAGE_DIGEST (from `docker image inspect`) is passed in: both go into
# report.json's record.environment. GITHUB_* variables (never GITHUB_TOKEN) are forwarded, and the
# step summary file is mounted, so the run writes annotations and its step summary as on a runner.
#
# Exit status: the harness's (0 pass, 1 a check failed, 2 could not run or tell, 130 interrupted);
# 2 when docker is missing or has no engine, before anything is built or pulled.
set -euo pipefail

IMAGE=${COLAB_RUNTIME_IMAGE:-us-docker.pkg.dev/colab-images/public/cpu-runtime:latest}
NOTEBOOK=${NOTEBOOK:-notebook/template.ipynb}
OUT=${OUT:-out/colab-runtime}
TIMEOUT=${TIMEOUT:-5400}
PARAMETERS=${PARAMETERS:-}

die() { echo "colab-runtime: $*" >&2; exit 2; }

# --- docker first: where it cannot run containers, say so before building anything -----------------
command -v docker >/dev/null 2>&1 \
  || die "docker is not installed; this runs the notebook inside Colab's runtime container ($IMAGE). Install Docker, or use 'make ci-colab' (the mirrors, no docker)."
if ! engine_error=$(docker info 2>&1 >/dev/null); then
  die "docker has no engine to talk to ($(printf '%s' "$engine_error" | grep -m1 -iE 'cannot connect|error|permission' || echo 'docker info failed')). Start the Docker daemon (or give this user access to it), then rerun."
fi
[ -f "$NOTEBOOK" ] || die "no notebook $NOTEBOOK (run from the repository root, or set NOTEBOOK)"
UV=${UV:-$(command -v uv || echo .venv/bin/uv)}
[ -x "$UV" ] || die "uv not found (PATH or .venv/bin/uv): it builds the harness's wheel and its venv in the container"

# --- the harness as a wheel, built here: the checkout is mounted read-only -------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$UV" build --wheel --quiet --out-dir "$work/wheel" .
wheel=$(cd "$work/wheel" && ls colab_ci-*.whl)

# --- the image and its identity --------------------------------------------------------------------
docker image inspect "$IMAGE" >/dev/null 2>&1 || docker pull "$IMAGE"
COLAB_CI_IMAGE_DIGEST=$(docker image inspect --format '{{index .RepoDigests 0}}' "$IMAGE" 2>/dev/null || true)
export COLAB_CI_IMAGE_DIGEST
echo "colab-runtime: $IMAGE = ${COLAB_CI_IMAGE_DIGEST:-no registry digest (a local build?)}"

# --- what the container gets ------------------------------------------------------------------------
case $OUT in /*) out_dir=$OUT ;; *) out_dir=$PWD/$OUT ;; esac
mkdir -p "$out_dir"
args=(--rm --init
      --entrypoint /bin/bash                                # Colab's entrypoint starts Jupyter; we run the harness
      -v "$PWD:/work:ro" -w /work                           # the checkout under test: the notebook and its tiers
      -v "$out_dir:/out"                                    # the reports, the only thing written back
      -v "$work/wheel:/wheel:ro"
      -v "$(cd "$(dirname "$UV")" && pwd)/$(basename "$UV"):/opt/colab-ci/uv:ro"
      -e COLAB_CI_CHECKOUT=/work -e COLAB_CI_IMAGE_DIGEST -e PARAMETERS -e PYTHONUNBUFFERED=1
      -e NOTEBOOK -e TIMEOUT -e WHEEL="/wheel/$wheel" -e HOST_UID="$(id -u)" -e HOST_GID="$(id -g)")
# Annotations and the step summary, as on a runner. Tokens stay outside the container.
while read -r name; do
  case $name in
    *TOKEN*|*SECRET*|*PASSWORD*) ;;
    GITHUB_*) args+=(-e "$name") ;;
  esac
done < <(compgen -e)
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$GITHUB_STEP_SUMMARY" ]; then
  args+=(-v "$GITHUB_STEP_SUMMARY:$GITHUB_STEP_SUMMARY")
fi

# --- inside: colab-runtime-inside.sh, from the read-only checkout ----------------------------------------
docker run "${args[@]}" "$IMAGE" /work/.github/scripts/colab-runtime-inside.sh
