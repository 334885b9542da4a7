"""Coreset baselines of the DC paper (section 3.1): herding, k-center and forgetting, on hand-made features."""
import torch

from dcpipe.coreset import (forgetting_counts, forgetting_select, herding_order, herding_select, kcenter_order,
                            kcenter_select)


def _features(n=40, d=5, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)).double()


def test_herding_picks_the_sample_nearest_the_class_mean_first():
    f = _features()
    assert herding_order(f, 1)[0] == int(((f - f.mean(0)) ** 2).sum(1).argmin())


def test_herdings_running_mean_approaches_the_class_mean():
    f = _features(200)
    order = herding_order(f, 30)
    gaps = [float((f[order[:k]].mean(0) - f.mean(0)).norm()) for k in (1, 5, 10, 30)]
    assert gaps[-1] < gaps[0] and gaps == sorted(gaps, reverse=True)
    # better than the running mean of random picks of the same size
    rand = torch.randperm(200, generator=torch.Generator().manual_seed(1))[:30]
    assert gaps[-1] < float((f[rand].mean(0) - f.mean(0)).norm())


def test_kcenter_starts_at_the_centre_and_each_pick_is_the_farthest_remaining_point():
    f = _features()
    order = kcenter_order(f, 6)
    assert order[0] == int(((f - f.mean(0)) ** 2).sum(1).argmin())
    for k in range(1, 6):
        nearest = torch.cdist(f, f[order[:k]]).min(1).values
        assert order[k] == int(nearest.argmax())


def test_forgetting_events_are_counted_from_a_hand_made_accuracy_trace():
    trace = torch.tensor([[1, 0, 0, 1],   # presentations (rows) x samples (columns)
                          [0, 1, 0, 1],
                          [1, 0, 0, 1],
                          [0, 1, 0, 1]])
    # sample 0: 1,0,1,0 is forgotten twice; sample 1: 0,1,0,1 once; sample 2 is never learnt; sample 3 never forgotten
    assert forgetting_counts(trace).tolist() == [2.0, 1.0, float("inf"), 0.0]


def test_forgetting_selects_the_most_forgotten_samples_of_each_class():
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    counts = torch.tensor([0.0, 5.0, 1.0, 2.0, float("inf"), 0.0])
    assert forgetting_select(labels, 1, 2, seed=0, counts=counts).tolist() == [1, 4]


def test_selections_never_cross_classes_and_are_deterministic_for_a_seed():
    labels = torch.arange(3).repeat_interleave(20)
    f = _features(60)
    counts = forgetting_counts(torch.randint(0, 2, (8, 60), generator=torch.Generator().manual_seed(3)))
    for select, evidence in ((herding_select, {"features": f}), (kcenter_select, {"features": f}),
                             (forgetting_select, {"counts": counts})):
        a = select(labels, 4, 3, seed=7, **evidence)
        assert torch.equal(a, select(labels, 4, 3, seed=7, **evidence))
        assert labels[a].tolist() == [0] * 4 + [1] * 4 + [2] * 4
        assert len(set(a.tolist())) == 12
