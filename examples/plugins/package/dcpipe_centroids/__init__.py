"""Class centroids as synthetic images: per class, the mean image (ipc 1) or the ipc k-means centroids (Lloyd, "Least
squares quantization in PCM", IEEE Trans. Inf. Theory 1982) of its normalised training images. A simple, real
baseline for condensation: the class mean is the pixel-space counterpart of what distribution matching matches
(DM, Zhao & Bilen, WACV 2023: the class's mean embedding under random networks; under a linear embedding the two
coincide).

An installed dcpipe method (docs/plugins.md): the entry point `Centroids = "dcpipe_centroids:synthesise"` of the
group dcpipe.methods (pyproject.toml) names it, and the decorator says its kind. Settings: none (k-means runs 10
Lloyd iterations from ipc random images of the class, drawn from torch's generator, which dcpipe seeds).
"""

import torch

from dcpipe.plugin import synthetic

ITERS = 10


def centroids(x: torch.Tensor, k: int) -> torch.Tensor:
    """k-means centroids of the rows of x (the mean for k = 1); an empty cluster keeps its centroid."""
    if k == 1:
        return x.mean(dim=0, keepdim=True)
    c = x[torch.randperm(len(x))[:k].to(x.device)].clone()
    for _ in range(ITERS):
        assign = torch.cdist(x, c).argmin(dim=1)
        for j in range(k):
            if (assign == j).any():
                c[j] = x[assign == j].mean(dim=0)
    return c


@synthetic
def synthesise(data, ipc, seed, device, settings, progress, checkpoint):
    images = []
    for cls in range(data.classes):
        x = data.images[data.indices_of(cls)].flatten(1)
        images.append(centroids(x, ipc).view(ipc, data.channels, *data.im_size))
        progress(cls, data.classes)
    labels = torch.arange(data.classes, device=data.images.device).repeat_interleave(ipc)
    return torch.cat(images), labels
