"""K-means coreset: per class, Lloyd's k-means (Lloyd, "Least squares quantization in PCM", IEEE Trans. Inf.
Theory 1982) with k = ipc on the flattened normalised pixels, then the real image nearest each centroid (distinct
images). Selecting the samples nearest k-means centres of each class is the coreset baseline of, e.g., DREAM (Liu
et al., "DREAM: Efficient Dataset Distillation by Representative Matching", ICCV 2023).

A local-file coreset plug-in (docs/plugins.md): torch only; its random start draws from torch's global generator,
which the door seeds from the set's seed, so a rerun selects the same images.
"""

import torch


def select(data, ipc, seed, device, settings, progress, checkpoint):
    picks = []
    for c in range(data.classes):
        idx = data.indices_of(c)
        x = data.images[idx].flatten(1)
        centroids = x[torch.randperm(len(x))[:ipc].to(x.device)].clone()  # k distinct images of the class
        for _ in range(settings.get("iters", 10)):
            assign = torch.cdist(x, centroids).argmin(dim=1)
            for k in range(ipc):  # an empty cluster keeps its centroid
                if (assign == k).any():
                    centroids[k] = x[assign == k].mean(dim=0)
        dist = torch.cdist(centroids, x)
        chosen = []
        for k in range(ipc):  # the nearest real image not taken by an earlier centroid
            d = dist[k].clone()
            d[chosen] = float("inf")
            chosen.append(int(d.argmin()))
        picks.append(idx[chosen])
        progress(c, data.classes)
    return picks
