#!/usr/bin/env bash
# Print the nearest `shared/data` folder above this checkout (the team's local dataset mirror), if any.
d=$(cd "$(dirname "$0")/.." && pwd)
while [ "$d" != "/" ]; do
  if [ -f "$d/shared/data/MANIFEST.md" ]; then echo "$d/shared/data"; exit 0; fi
  d=$(dirname "$d")
done
