"""Continual learning with a condensed rehearsal memory: the DC paper's section 3.2 (and appendix A) experiment,
whose code its authors never released.

The learner is End-to-End Incremental Learning (E2E, Castro et al. 2018) on a sequence of digit tasks that share
the labels 0-9 (task-incremental: SVHN -> MNIST -> USPS in the paper), all as 32x32 RGB images:

stage 1:   train a ConvNet on task 1
stage t>1: memory += 10 images per class of task t-1, chosen by the memory method:
               herding  (E2E: greedy herding in the learner's feature space, after stage t-1) or
               DC       (that task's condensed set, learned by gradient matching on its training data)
           train on task t's data + the memory, cross-entropy [+ 1.0 x distillation towards the stage t-1 model,
               temperature 2], `iterations` SGD steps at lr 0.01;
           balanced fine-tuning: `finetune_iterations` steps at lr 0.001 on the memory + as many images per class
               of task t (the same loss)
after each stage: accuracy on 2,000 random test images of every task seen so far (2,000 -> 4,000 -> 6,000).

The four settings of Figure 4 are {herding, DC} x {with, without distillation}. Stage 1 has no memory and no
teacher, so it is the same computation in all four: it is trained once per run and every setting continues from
that one model (the settings are paired: same initialisation, same batches, same test images).

Not specified by the DC paper, chosen here (each says why where it is made): the distillation form (E2E's
soft-target cross-entropy, written as a KL divergence), the mini-batch (E2E's 128), SGD momentum 0.9 and weight
decay 5e-4 (the project's training settings), herding on L2-normalised features (iCaRL/E2E), and the new task's
share of the balanced fine-tuning set (10 random real images per class, the same in every setting).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .continual_config import MEMORIES, ContinualConfig, Setting
from .coreset import herding_order
from .models import build_model
from .seeding import derive_seed, generator, torch_seeded
from .precision import autocast
from .train import test_accuracy

log = logging.getLogger(__name__)

@dataclass
class Task:
    """One task's data, normalised, in the shared 32x32 RGB format, plus its condensed set for the DC memory."""
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    condensed: tuple[torch.Tensor, torch.Tensor] | None = None


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """E2E's distillation term: cross-entropy between the teacher's and the student's softened outputs
    (softmax of logits / T). Written as KL(teacher || student), which differs from that cross-entropy by the
    teacher's entropy alone, a constant for the student: the same gradients, and 0 when the student equals the
    teacher. Averaged over the batch; no T^2 factor (E2E has none; the weight is the DC paper's 1.0)."""
    return F.kl_div(F.log_softmax(student_logits / temperature, 1), F.log_softmax(teacher_logits / temperature, 1),
                    reduction="batchmean", log_target=True)


class Memory:
    """The rehearsal memory: for each earlier task, at most `per_class` images of each class."""

    def __init__(self, per_class: int, num_classes: int):
        self.per_class, self.num_classes = per_class, num_classes
        self.parts: list[tuple[str, torch.Tensor, torch.Tensor]] = []

    def add(self, task: str, x: torch.Tensor, y: torch.Tensor) -> None:
        counts = torch.bincount(y.cpu(), minlength=self.num_classes)
        if task in self.tasks or len(x) != len(y) or counts.max() > self.per_class:
            raise ValueError(f"memory of task {task}: {counts.tolist()} images per class (budget {self.per_class}), "
                             f"tasks already held: {self.tasks}")
        self.parts.append((task, x.detach(), y))

    @property
    def tasks(self) -> list[str]:
        return [t for t, _, _ in self.parts]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([x for _, x, _ in self.parts]), torch.cat([y for _, _, y in self.parts])

    def __len__(self) -> int:
        return sum(len(y) for _, _, y in self.parts)


def _batches(n: int, batch: int, iterations: int, gen: torch.Generator):
    """`iterations` mini-batches of shuffled indices: passes over a fresh permutation, dropping each pass's tail."""
    b = min(batch, n)
    perm, pos = torch.randperm(n, generator=gen), 0
    for _ in range(iterations):
        if pos + b > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        yield perm[pos:pos + b]
        pos += b


def fit(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, iterations: int, lr: float, cfg: ContinualConfig,
        gen: torch.Generator, teacher: torch.nn.Module | None = None) -> torch.nn.Module:
    """One phase of an E2E stage: `iterations` SGD steps at a constant lr on (x, y), plus the distillation term
    when there is a teacher. Not train.train_model: that one trains a fresh network for a number of epochs with a
    half-way lr drop; an E2E stage continues a network for a number of steps, with a second loss term."""
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    net.train()
    for idx in _batches(len(y), cfg.batch, iterations, gen):
        idx = idx.to(x.device)
        xb = x[idx]
        with autocast(x.device, cfg.precision):
            logits = net(xb)
            loss = F.cross_entropy(logits, y[idx])
            if teacher is not None:
                with torch.no_grad():
                    target = teacher(xb)
                loss = loss + cfg.kd_weight * distillation_loss(logits.float(), target.float(), cfg.kd_temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net


@torch.no_grad()
def features(net: torch.nn.Module, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """The learner's feature vector (the input of its last linear layer), L2-normalised as iCaRL/E2E herd on."""
    net.eval()
    f = torch.cat([net.features(x[i:i + batch]).flatten(1) for i in range(0, len(x), batch)])
    return F.normalize(f, dim=1)


def herding_memory(net, task: Task, per_class: int, num_classes: int, candidates: int | None,
                   gen: torch.Generator) -> torch.Tensor:
    """E2E's memory of a finished task: per class, greedy herding (coreset.herding_order) in the current model's
    feature space, over all of the class's training images or a random `candidates` of them. Returns indices."""
    out = []
    for c in range(num_classes):
        idx = torch.nonzero(task.y_train == c).flatten()
        if len(idx) < per_class:
            raise ValueError(f"{task.name}: class {c} has {len(idx)} training images, fewer than {per_class}")
        if candidates is not None and len(idx) > candidates:
            idx = idx[torch.randperm(len(idx), generator=gen)[:candidates].to(idx.device)]
        order = herding_order(features(net, task.x_train[idx]).double().cpu(), per_class)
        out.append(idx[torch.as_tensor(order, device=idx.device)])
    return torch.cat(out)


def random_per_class(y: torch.Tensor, per_class: int, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    out = []
    for c in range(num_classes):
        idx = torch.nonzero(y == c).flatten()
        out.append(idx[torch.randperm(len(idx), generator=gen)[:per_class].to(idx.device)])
    return torch.cat(out)


def test_sets(tasks: list[Task], n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`n` random test images of each task (DC appendix A: 2,000, "a balanced evaluation over three datasets")."""
    out = []
    for t in tasks:
        if len(t.y_test) < n:
            raise ValueError(f"{t.name} has {len(t.y_test)} test images, fewer than test_per_task = {n}")
        idx = torch.randperm(len(t.y_test), generator=generator(derive_seed(seed, "test", t.name)))[:n]
        idx = idx.to(t.y_test.device)
        out.append((t.x_test[idx], t.y_test[idx]))
    return out


def evaluate(net, tests, cfg: ContinualConfig) -> dict:
    """Accuracy on the union of the tasks' test images seen so far, and on each task."""
    per_task = [test_accuracy(net, x, y, cfg.test_batch) for x, y in tests]
    sizes = [len(y) for _, y in tests]
    return {"accuracy": sum(a * n for a, n in zip(per_task, sizes)) / sum(sizes), "per_task": per_task,
            "test_images": sum(sizes)}


@dataclass
class SettingRun:
    """What one setting did: per stage, its test result and the memory it trained with."""
    setting: Setting
    stages: list[dict] = field(default_factory=list)


def run_setting(stage1: torch.nn.Module, tasks: list[Task], tests, setting: Setting, cfg: ContinualConfig,
                seed: int, num_classes: int, stage1_result: dict) -> SettingRun:
    """Stages 2..T of one setting, continuing from the stage-1 model (left untouched)."""
    net = copy.deepcopy(stage1)
    memory = Memory(cfg.memory_per_class, num_classes)
    out = SettingRun(setting, [{**stage1_result, "memory_tasks": [], "memory_images": 0}])
    for t in range(1, len(tasks)):
        done, new = tasks[t - 1], tasks[t]
        if setting.memory == "herding":
            g = generator(derive_seed(seed, "herding", done.name))
            idx = herding_memory(net, done, cfg.memory_per_class, num_classes, cfg.herding_candidates, g)
            memory.add(done.name, done.x_train[idx], done.y_train[idx])
        elif setting.memory == "DC":
            if done.condensed is None:
                raise ValueError(f"DC memory: no condensed set for task {done.name}")
            memory.add(done.name, *done.condensed)
        else:
            raise ValueError(f"unknown memory {setting.memory!r}; valid: {', '.join(MEMORIES)}")
        teacher = copy.deepcopy(net).eval() if setting.distillation else None
        mx, my = memory.tensors()
        fit(net, torch.cat([new.x_train, mx]), torch.cat([new.y_train, my]), cfg.iterations, cfg.lr, cfg,
            generator(derive_seed(seed, "train", t)), teacher)
        # balanced fine-tuning: the memory plus as many images per class of the new task
        pick = random_per_class(new.y_train, cfg.memory_per_class, num_classes,
                                generator(derive_seed(seed, "balanced", new.name)))
        fit(net, torch.cat([new.x_train[pick], mx]), torch.cat([new.y_train[pick], my]), cfg.finetune_iterations,
            cfg.finetune_lr, cfg, generator(derive_seed(seed, "finetune", t)), teacher)
        result = evaluate(net, tests[:t + 1], cfg)
        out.stages.append({**result, "memory_tasks": memory.tasks, "memory_images": len(memory),
                           "memory_class_counts": torch.bincount(my.cpu(), minlength=num_classes).tolist()})
        log.info("%s, stage %d (%s): accuracy %.4f on %d test images", setting.name, t + 1, new.name,
                 result["accuracy"], result["test_images"])
    return out


def train_stage1(tasks: list[Task], cfg: ContinualConfig, seed: int, num_classes: int) -> torch.nn.Module:
    first = tasks[0]
    with torch_seeded(derive_seed(seed, "init")):
        net = build_model(cfg.model, first.x_train.shape[1], num_classes, tuple(first.x_train.shape[2:]))
    net = net.to(first.x_train.device)
    return fit(net, first.x_train, first.y_train, cfg.iterations, cfg.lr, cfg, generator(derive_seed(seed, "train", 0)))


def run(tasks: list[Task], settings: list[Setting], cfg: ContinualConfig, seed: int, num_classes: int = 10,
        stage1: torch.nn.Module | None = None, done: dict | None = None, on_setting=None) -> list[SettingRun]:
    """All settings of one run (one seed). `stage1` / `done` let a resumed run skip finished work; `on_setting`
    is called with each finished SettingRun (the stage's checkpoint)."""
    shapes = {tuple(t.x_train.shape[1:]) for t in tasks}
    if len(shapes) != 1:
        raise ValueError(f"tasks must share one image format, got {shapes}")
    tests = test_sets(tasks, cfg.test_per_task, seed)
    if stage1 is None:
        stage1 = train_stage1(tasks, cfg, seed, num_classes)
    stage1_result = evaluate(stage1, tests[:1], cfg)
    log.info("stage 1 (%s): accuracy %.4f on %d test images", tasks[0].name, stage1_result["accuracy"],
             stage1_result["test_images"])
    out = []
    for s in settings:
        if done and s.name in done:
            out.append(done[s.name])
            continue
        out.append(run_setting(stage1, tasks, tests, s, cfg, seed, num_classes, stage1_result))
        if on_setting:
            on_setting(stage1, out[-1])
    return out
