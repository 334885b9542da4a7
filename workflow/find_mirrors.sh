#!/usr/bin/env bash
# Print the nearest `shared/data` folder (the team's local dataset mirror) above this checkout or, for a clone
# made elsewhere (CI clones into a temporary directory), above the local repository it was cloned from.
here=$(cd "$(dirname "$0")/.." && pwd)
origin=$(git -C "$here" config --get remote.origin.url 2>/dev/null)
for start in "$here" "$origin"; do
  [ -d "$start" ] || continue
  d=$(cd "$start" && pwd)
  while [ "$d" != "/" ]; do
    if [ -f "$d/shared/data/MANIFEST.md" ]; then echo "$d/shared/data"; exit 0; fi
    d=$(dirname "$d")
  done
done
