"""The NB101 model in PyTorch against published parameter counts: the NAS-Bench-101 README's example cell
(2,694,282 trainable parameters) and the `params` of NAS-Bench-Suite-Zero's 500 NB101 architectures."""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest
import torch

from search_spaces.nb1shot1.nb101.graph import CONV1X1, CONV3X3, MAXPOOL3X3
from search_spaces.nb1shot1.nb101_network import NB101Network, vertex_channels


def _params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_readme_example_parameter_count():
    # google-research/nasbench README: querying this (pruned) cell returns trainable_parameters 2694282
    m = [[0, 1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1],
         [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]]
    ops = ["input", CONV3X3, CONV1X1, MAXPOOL3X3, CONV3X3, CONV3X3, "output"]
    net = NB101Network(m, ops)
    assert _params(net) == 2694282
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_vertex_channels_split_and_propagate():
    m = [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    # output 128 split over vertices 2 and 3 (64 each); vertex 1 feeds only 3 -> 64
    assert vertex_channels(128, 128, m) == [128, 64, 64, 64, 128]
    m3 = [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    assert vertex_channels(64, 100, m3) == [64, 34, 33, 33, 100]  # remainder to the first vertices


def test_zc_published_parameter_counts(shared_data):
    path = shared_data / "zero_cost" / "zc_nasbench101_small.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    data = json.loads(path.read_text())["nasbench101"]["cifar10"]
    names = {0: "input", 1: "output", 2: MAXPOOL3X3, 3: CONV1X1, 4: CONV3X3}
    items = list(data.items())[::5]  # 100 of the 500, to keep the test to seconds
    for key, value in items:
        k = ast.literal_eval(key)
        net = NB101Network(np.array(k[:49]).reshape(7, 7), [names[c] for c in k[49:]])
        assert _params(net) / 1e6 == pytest.approx(value["params"], abs=1e-6), key
