#!/usr/bin/env bash
# Runs inside Colab's runtime container, started by colab-runtime.sh (read that first): the harness in
# a venv of its own, the kernel on the image's own python3 with --in-place, so an install cell really
# replaces what Colab pre-installed, as it would in Colab.
#
# Environment (set by colab-runtime.sh): WHEEL (the harness), NOTEBOOK, TIMEOUT, PARAMETERS, HOST_UID,
# HOST_GID. The paths colab-runtime.sh mounts (tests/workflows/test_scripts.py runs this outside a
# container, with its own): COLAB_CI_OUT (/out, the reports), COLAB_CI_UV (/opt/colab-ci/uv),
# COLAB_CI_HARNESS_VENV (/tmp/harness).
set -euo pipefail
out=${COLAB_CI_OUT:-/out}
uv=${COLAB_CI_UV:-/opt/colab-ci/uv}
harness_venv=${COLAB_CI_HARNESS_VENV:-/tmp/harness}

# The reports belong to whoever ran colab-runtime.sh, not to the container's root.
# shellcheck disable=SC2064 # the ids are fixed now
trap "chown -R '${HOST_UID:-0}:${HOST_GID:-0}' '$out' 2>/dev/null || true" EXIT

kernel_python=$(command -v python3)
echo "colab-runtime: COLAB_RELEASE_TAG=${COLAB_RELEASE_TAG:-unset}; kernel: $kernel_python ($("$kernel_python" --version 2>&1))"
UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --python "$kernel_python" "$harness_venv"
"$uv" pip install --quiet --python "$harness_venv/bin/python" "$WHEEL"

run=("$harness_venv/bin/python" -m harness run "$NOTEBOOK" --python "$kernel_python" --in-place
     --out "$out" --timeout "$TIMEOUT")
for parameter in $PARAMETERS; do run+=(-p "$parameter"); done
# The kernel sees an allow-list of the harness's environment (docs/harness.md). Here the container's
# environment is Colab's runtime's own (the image's ENV: PYTHONPATH, MPLBACKEND, TF_*, ...), so each of
# its variables is named with --env (names only; values stay in the environment), except those
# colab-runtime.sh added for the harness and anything named like a secret.
while read -r name; do
  case $name in
    *TOKEN*|*SECRET*|*PASSWORD*|*PASSWD*|*CREDENTIAL*|*KEY*|*AUTH*) ;;
    GITHUB_*|RUNNER_*|COLAB_CI_*|PARAMETERS|NOTEBOOK|TIMEOUT|WHEEL|HOST_UID|HOST_GID|PWD|OLDPWD|SHLVL|_) ;;
    *) run+=(--env "$name") ;;
  esac
done < <(compgen -e)

# In the background, so that a stop (the step's timeout, Ctrl-C: docker passes it to tini, tini to
# this shell) reaches the harness, which ends the run and writes its reports; bash alone would die of
# the signal and take nothing down with it in order.
"${run[@]}" &
harness=$!
# shellcheck disable=SC2064 # the pid is fixed now
trap "kill -TERM $harness 2>/dev/null || true" TERM INT
while :; do
  wait "$harness" && status=0 || status=$?
  kill -0 "$harness" 2>/dev/null || break   # still running: the wait was cut short by the trap
done
exit "$status"
