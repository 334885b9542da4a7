"""Distribution matching, a small variant of DM (Zhao & Bilen, "Dataset Condensation with Distribution Matching",
WACV 2023): synthetic images, initialised from random real images of each class, are optimised with SGD so that
their mean embedding under a freshly initialised random ConvNet (a new one every iteration) matches that of a batch
of real images of the same class. Unlike the paper: a 2-block embedder, and no DSA augmentation.

A local-file synthetic plug-in (docs/plugins.md). Settings: iterations, lr_img, batch_real, checkpoint_every. It
checkpoints the images, SGD's momentum, the loss curve, torch's generator and the next iteration, so a run killed
and restarted ends bit-identical to an uninterrupted one.
"""

import torch
from torch import nn


def embedder(channels: int, width: int = 32) -> nn.Module:
    """Two conv-instancenorm-relu-avgpool blocks (DC's ConvNet, depth 2), flattened: the embedding."""
    def block(cin):
        return [nn.Conv2d(cin, width, 3, padding=1), nn.GroupNorm(width, width), nn.ReLU(), nn.AvgPool2d(2)]
    return nn.Sequential(*block(channels), *block(width), nn.Flatten())


def synthesise(data, ipc, seed, device, settings, progress, checkpoint):
    iterations, every = settings["iterations"], settings.get("checkpoint_every", 10)
    by_class = [data.indices_of(c) for c in range(data.classes)]
    batch = min(settings["batch_real"], *(len(ix) for ix in by_class))
    images = torch.cat([data.images[ix[torch.randperm(len(ix))[:ipc].to(ix.device)]] for ix in by_class])
    images = images.detach().clone().to(device).requires_grad_(True)
    labels = torch.arange(data.classes, device=device).repeat_interleave(ipc)
    opt = torch.optim.SGD([images], lr=settings["lr_img"], momentum=0.5)  # the paper's optimiser
    start, losses = 0, []
    state = checkpoint.load() if checkpoint else None
    if state:  # resume where the killed run last saved
        with torch.no_grad():
            images.copy_(state["images"])
        opt.state[images]["momentum_buffer"] = state["momentum"].to(device)
        start, losses = int(state["next"]), state["losses"].tolist()
        torch.set_rng_state(state["rng"])
    for it in range(start, iterations):
        net = embedder(data.channels).to(device)
        net.requires_grad_(False)
        real = torch.cat([data.images[ix[torch.randperm(len(ix))[:batch].to(ix.device)]] for ix in by_class])
        mean_real = net(real.to(device)).view(data.classes, batch, -1).mean(dim=1)
        mean_syn = net(images).view(data.classes, ipc, -1).mean(dim=1)
        loss = ((mean_real - mean_syn) ** 2).sum()  # summed over the classes, as DM
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        progress(it, iterations, losses[-1])
        if checkpoint and (it + 1) % every == 0 and it + 1 < iterations:
            checkpoint.save({"images": images, "momentum": opt.state[images]["momentum_buffer"],
                             "losses": torch.tensor(losses, dtype=torch.float64), "rng": torch.get_rng_state(),
                             "next": torch.tensor(it + 1)})
    return images.detach(), labels, {"matching_loss": losses}
