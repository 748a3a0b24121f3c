#!/usr/bin/env bash
# Commits what a release changed in Pulumi.<stack>.yaml (the image tag and digests `venta deploy`
# or `venta rollback` wrote) to the main branch, so that pull-request previews, drift checks and
# the next deploy read the version that is running. Run from the checkout the deploy ran in (a
# commit of main, or a release tag): the release commit is replayed onto the newest main, where
# it touches only the release keys, and pushed; a push that loses a race is retried.
# Usage: record-release.sh <stack> <version>
set -euo pipefail
stack="$1" version="$2"
remote="${RELEASE_REMOTE:-origin}" branch="${RELEASE_BRANCH:-main}"
file="Pulumi.$stack.yaml"

if git diff --quiet -- "$file"; then
  echo "record-release: $file is unchanged; nothing to record"
  exit 0
fi
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-github-actions[bot]}"
export GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
# [skip ci]: the commit records a deploy that already ran; it must not start another.
git commit --quiet -m "release: $stack at $version [skip ci]" -- "$file"
release=$(git rev-parse HEAD)

for attempt in 1 2 3 4 5; do
  git fetch --quiet "$remote" "$branch"
  git checkout --quiet --detach FETCH_HEAD
  if ! git cherry-pick "$release" >/dev/null 2>&1; then
    git cherry-pick --abort
    echo "record-release: $file on $branch changed the same lines; record commit $release by hand" >&2
    exit 1
  fi
  if git push --quiet "$remote" "HEAD:refs/heads/$branch"; then
    echo "record-release: $stack at $version recorded on $branch ($(git rev-parse --short HEAD))"
    exit 0
  fi
  echo "record-release: $branch moved while pushing; trying again ($attempt)" >&2
  sleep "$attempt"
done
echo "record-release: could not push to $branch; record $file by hand from commit $release" >&2
exit 1
