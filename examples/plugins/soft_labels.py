"""Soft labels by knowledge distillation: random real images of each class, relabelled by a small teacher. A
teacher's softened predictions as the labels of a distilled set is the relabelling of FKD (Shen & Xing, "A Fast
Knowledge Distillation Framework for Visual Recognition", ECCV 2022) and SRe2L (Yin, Xing & Shen, "Squeeze, Recover
and Relabel: Dataset Condensation at ImageNet Scale From A New Perspective", NeurIPS 2023), after Hinton, Vinyals
& Dean, "Distilling the Knowledge in a Neural Network" (2015).

A local-file synthetic plug-in (docs/plugins.md) that returns soft labels: a one-hidden-layer MLP teacher, trained
for `epochs` epochs on the real training images, labels each image at temperature T, mixed with its one-hot label:
p = (1 - alpha) * onehot + alpha * softmax(logits / T). With alpha < 0.5 each row's argmax is the image's own class,
as the door requires, and each row sums to 1. Settings: epochs, temperature, alpha, hidden, lr, batch.
"""

import torch
import torch.nn.functional as F
from torch import nn


def synthesise(data, ipc, seed, device, settings, progress, checkpoint):
    alpha, T, epochs = settings["alpha"], settings["temperature"], settings["epochs"]
    if not 0 <= alpha < 0.5:
        raise ValueError(f"alpha {alpha}: must be in [0, 0.5) so that each row's argmax stays the image's class")
    x, y = data.images.flatten(1).to(device), data.labels.to(device)
    teacher = nn.Sequential(nn.Linear(x.shape[1], settings.get("hidden", 128)), nn.ReLU(),
                            nn.Linear(settings.get("hidden", 128), data.classes)).to(device)
    opt = torch.optim.Adam(teacher.parameters(), lr=settings.get("lr", 1e-3))
    for epoch in range(epochs):
        for b in torch.randperm(len(x)).to(device).split(settings.get("batch", 64)):
            loss = F.cross_entropy(teacher(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        progress(epoch, epochs, loss.item())
    by_class = [data.indices_of(c) for c in range(data.classes)]
    picks = torch.cat([ix[torch.randperm(len(ix))[:ipc].to(ix.device)] for ix in by_class])  # random real images
    images, hard = data.images[picks], data.labels[picks]
    with torch.no_grad():
        teacher_probs = F.softmax(teacher(images.flatten(1).to(device)) / T, dim=1)
    soft = (1 - alpha) * F.one_hot(hard, data.classes).float().to(device) + alpha * teacher_probs
    return images, soft
