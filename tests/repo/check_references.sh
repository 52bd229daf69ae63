#!/usr/bin/env bash
# The project stands alone: no tracked file may point at the shared folder beside the repository,
# at the build machine's work directory, at specification notes kept outside the project (a
# path into a specs folder: what they say belongs in docs/), or at tracker issues by number ("issue"
# followed by a number; cite another project's bug by its URL instead). Recorded experiment results
# (experiments/results/) are data and exempt.
# Usage: check_references.sh [source dir]; exits 77 (skipped) outside a git checkout.
set -u
root=${1:-$(dirname "$0")/../..}
if ! git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "not a git checkout: $root (skipped)"
  exit 77
fi
# The patterns are written so that they do not match this file's own text.
patterns=(
  -e '\.\.[/]shared'
  -e '/wor[k]/'
  -e '(^|[^A-Za-z0-9_./-])spec[s]/[A-Za-z0-9_-]+\.md'
  -e '(^|[^A-Za-z])[Ii][Ss][Ss][Uu][Ee][Ss]?[ ]*#?[0-9]+'
)
found=$(git -C "$root" grep -n -I -E "${patterns[@]}" -- . ':(exclude)experiments/results/')
if [ -n "$found" ]; then
  echo "tracked files refer outside the project or to issue numbers:" >&2
  echo "$found" >&2
  exit 1
fi
echo "no references outside the project, no issue numbers"
