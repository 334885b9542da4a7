"""The coreset baselines' names and the evidence each selects from (no torch): what the method grammar and the plan
read. dcpipe.coreset selects (coreset.SELECTORS: one function per name here)."""

CORESETS = ("random", "herding", "kcenter", "forgetting")
# What each method looks at besides the labels: the keyword it takes, filled from the whole-set stage's artifacts
# (artifacts.EVIDENCE: the file of each keyword).
EVIDENCE = {"herding": "features", "kcenter": "features", "forgetting": "counts"}
