"""The names of the gradient-matching distances (dcpipe.matching computes them): what a parameter file or a method
name may say, checked without torch, so that the names' readers do not depend on the loss's code."""

from __future__ import annotations

import re

# Named distances. "ours" is DC's eq. 10 (= d1); "improved" is the follow-up's eq. 9 (d1 + d2, its "MD");
# the others are the rows of its Table 2 and the CIFAR-10 IPC-50 exception (d1 + 0.1 d2).
DISTANCES = ("ours", "improved", "d1", "d2", "d3", "d4", "100d4", "d1+d2", "d1+d3", "d1+100d4", "d1+0.1d2",
             "mse", "cos")
_TERM = re.compile(r"^(\d*\.?\d*)(d[1-4])$")


def parse_distance(name: str) -> list[tuple[float, str]]:
    """'d1+0.1d2' -> [(1.0, 'd1'), (0.1, 'd2')]; also accepts the aliases ours/improved."""
    name = {"ours": "d1", "improved": "d1+d2"}.get(name, name)
    terms = []
    for part in name.split("+"):
        m = _TERM.match(part.strip())
        if not m:
            raise ValueError(f"unknown distance {name!r}; valid: {', '.join(DISTANCES)} (or any sum like 'd1+0.5d3')")
        terms.append((float(m.group(1)) if m.group(1) else 1.0, m.group(2)))
    return terms


def is_distance(name: str) -> bool:
    try:
        if name not in ("mse", "cos"):
            parse_distance(name)
        return True
    except ValueError:
        return False
