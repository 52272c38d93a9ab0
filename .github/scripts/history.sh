#!/usr/bin/env bash
# This run's reports judged against the past runs kept in the colab-ci-history branch, and, with
# STORE=1 (the monthly schedule), kept there too. The workflow's `history` job runs it from the
# repository root after downloading the run's artifacts (docs/reports.md: the branch's layout).
#
#   .github/scripts/history.sh REPORTS_DIR
#
# Environment:
#   PYTHON          the harness's interpreter (default: .venv/bin/python)
#   STORE           1: commit this run's report.json files to the branch and push it; else judge only
#   HISTORY_BRANCH  the branch (default: colab-ci-history)
#   HISTORY_REMOTE  where it lives (default: origin)
#   GITHUB_TOKEN    for fetching and pushing over https://github.com; handed to git for each command
#                   as a header, never written to .git/config (the checkout keeps no credentials)
#
# The branch is checked out as a worktree in history/ (started, orphaned, the first time). Writes
# out/history/ (history.md, .html, .json; history.md also into the step summary).
# Exit status: colab-ci history's (0 in line, 1 an outlier, 2 the history could not be read), or 2
# when the branch could not be fetched or pushed.
set -euo pipefail

reports=${1:?usage: history.sh REPORTS_DIR}
PYTHON=${PYTHON:-.venv/bin/python}
branch=${HISTORY_BRANCH:-colab-ci-history}
remote=${HISTORY_REMOTE:-origin}

die() { echo "history: $*" >&2; exit 2; }

# git with the token as an http header, for github.com only; nothing else ever sees it. The header
# goes to git through its environment (GIT_CONFIG_COUNT/KEY/VALUE, git >= 2.31), never its command
# line: /proc/<pid>/cmdline is readable by every user of the machine, a process's environment is not.
git_auth() {
  if [ -n "${GITHUB_TOKEN:-}" ]; then
    local basic
    basic=$(printf 'x-access-token:%s' "$GITHUB_TOKEN" | base64 -w0)   # printf: a builtin, no argv
    if [ "${GITHUB_ACTIONS:-}" = true ]; then echo "::add-mask::$basic"; fi
    GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="http.https://github.com/.extraheader" \
      GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $basic" git "$@"
  else
    git "$@"
  fi
}

# --- the branch, as history/ ---------------------------------------------------------------------------
if git_auth ls-remote --exit-code --heads "$remote" "$branch" >/dev/null; then
  git_auth fetch --quiet --depth=1 "$remote" "+refs/heads/$branch:refs/remotes/$remote/$branch" \
    || die "cannot fetch $branch from $remote"
  git worktree add --quiet --detach history "refs/remotes/$remote/$branch"
else
  status=$?
  [ "$status" = 2 ] || die "cannot ask $remote for $branch (git ls-remote exit $status)"
  echo "history: no $branch in $remote yet: starting it"
  git worktree add --quiet --detach history
  git -C history checkout --quiet --orphan "$branch"
  git -C history rm -r --quiet --force .       # the branch holds runs/ only, never a copy of main
fi
mkdir -p history/runs

# --- judge (and keep) ----------------------------------------------------------------------------------
store=()
if [ "${STORE:-}" = 1 ]; then store=(--store history/runs); fi
verdict=0
"$PYTHON" -m harness history "$reports" --previous history/runs --out out/history "${store[@]}" || verdict=$?

if [ "${STORE:-}" = 1 ]; then
  git -C history add runs
  if git -C history diff --cached --quiet; then
    echo "history: nothing new to keep"
  else
    git -C history -c user.name="github-actions[bot]" \
      -c user.email="41898282+github-actions[bot]@users.noreply.github.com" \
      commit --quiet -m "history: run ${GITHUB_RUN_ID:-local} ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
    # A run folder is new each month, so a push that lost a race rebases cleanly onto the winner.
    for attempt in 1 2 3; do
      if git_auth -C history push --quiet "$remote" "HEAD:refs/heads/$branch"; then
        echo "history: kept in $branch"
        break
      fi
      [ "$attempt" = 3 ] && die "cannot push $branch to $remote"
      git_auth -C history fetch --quiet "$remote" "+refs/heads/$branch:refs/remotes/$remote/$branch" || true
      git -C history rebase --quiet "refs/remotes/$remote/$branch" || die "cannot rebase onto $remote/$branch"
    done
  fi
fi
exit "$verdict"
