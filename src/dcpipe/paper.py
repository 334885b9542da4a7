"""Numbers published in the papers, shown beside ours in the report (test accuracy %, mean, std)."""

# DC paper Table 1 (ConvNet, 5 sets x 20 models): {dataset: {ipc: {method: (mean, std)}}}
TABLE1 = {
    "MNIST": {1: {"random": (64.9, 3.5), "herding": (89.2, 1.6), "kcenter": (89.3, 1.5), "forgetting": (35.5, 5.6), "DC": (91.7, 0.5)},
              10: {"random": (95.1, 0.9), "herding": (93.7, 0.3), "kcenter": (84.4, 1.7), "forgetting": (68.1, 3.3), "DC": (97.4, 0.2)},
              50: {"random": (97.9, 0.2), "herding": (94.9, 0.2), "kcenter": (97.4, 0.3), "forgetting": (88.2, 1.2), "DC": (98.8, 0.2)}},
    "FashionMNIST": {1: {"random": (51.4, 3.8), "herding": (67.0, 1.9), "kcenter": (66.9, 1.8), "forgetting": (42.0, 5.5), "DC": (70.5, 0.6)},
                     10: {"random": (73.8, 0.7), "herding": (71.1, 0.7), "kcenter": (54.7, 1.5), "forgetting": (53.9, 2.0), "DC": (82.3, 0.4)},
                     50: {"random": (82.5, 0.7), "herding": (71.9, 0.8), "kcenter": (68.3, 0.8), "forgetting": (55.0, 1.1), "DC": (83.6, 0.4)}},
    "SVHN": {1: {"random": (14.6, 1.6), "herding": (20.9, 1.3), "kcenter": (21.0, 1.5), "forgetting": (12.1, 1.7), "DC": (31.2, 1.4)},
             10: {"random": (35.1, 4.1), "herding": (50.5, 3.3), "kcenter": (14.0, 1.3), "forgetting": (16.8, 1.2), "DC": (76.1, 0.6)},
             50: {"random": (70.9, 0.9), "herding": (72.6, 0.8), "kcenter": (20.1, 1.4), "forgetting": (27.2, 1.5), "DC": (82.3, 0.3)}},
    "CIFAR10": {1: {"random": (14.4, 2.0), "herding": (21.5, 1.2), "kcenter": (21.5, 1.3), "forgetting": (13.5, 1.2), "DC": (28.3, 0.5)},
                10: {"random": (26.0, 1.2), "herding": (31.6, 0.7), "kcenter": (14.7, 0.9), "forgetting": (23.3, 1.0), "DC": (44.9, 0.5)},
                50: {"random": (43.4, 1.0), "herding": (40.4, 0.6), "kcenter": (27.0, 1.4), "forgetting": (23.3, 1.1), "DC": (53.9, 0.5)}},
}
WHOLE_DATASET = {"MNIST": (99.6, 0.0), "FashionMNIST": (93.5, 0.1), "SVHN": (95.4, 0.1), "CIFAR10": (84.8, 0.1)}


def table1(dataset: str, ipc: int, method: str):
    return TABLE1.get(dataset, {}).get(int(ipc), {}).get(method)
