"""Our proxies against published scores (NAS-Bench-Suite-Zero, NB201 CIFAR-10) on a small fixed subset.

The full 491-architecture study is benchmarks/proxy_study.py (figures in benchmarks/proxies.md); the
thresholds here sit below its figures by a margin for the sampling noise of 24 architectures.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from search_spaces.nb201 import network
from trainables import proxies
from trainables.proxies.batch import proxy_batch
from trainables.proxies.published import load_suite_zero, naslib_key_to_arch

SUBSET = 24
# proxy -> minimum Spearman with the published column on the subset (full study: see benchmarks/proxies.md)
THRESHOLDS = {"synflow": 0.95, "params": 0.99, "flops": 0.95, "jacob_cov": 0.8}
SUITE_ZERO = {"synflow": "synflow", "params": "params", "flops": "flops", "jacob_cov": "jacov"}


def spearman(a, b) -> float:
    return float(pd.Series(list(a)).rank().corr(pd.Series(list(b)).rank()))


def test_naslib_key_conversion_matches_the_documented_example():
    assert naslib_key_to_arch("(4, 3, 3, 3, 2, 3)") == (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    with pytest.raises(ValueError, match="6 ops"):
        naslib_key_to_arch("(1, 2)")


@pytest.fixture(scope="module")
def published(shared_data) -> pd.DataFrame:
    pub = load_suite_zero(shared_data / "zero_cost" / "zc_nasbench201_small.json", "cifar10")
    table = pd.read_csv(shared_data / "nb201" / "nb201_merged.csv")
    return pub.merge(table, left_on="arch", right_on="arch_str", how="left")


def test_converted_keys_find_the_same_architectures(published):
    assert len(published) == 491 and published.arch_str.notna().all()
    assert spearman(published.val_accuracy, published.cifar10_valid_acc_200ep) > 0.98


@pytest.mark.slow
def test_proxies_agree_with_suite_zero_on_a_subset(published, shared_data):
    subset = published.sample(SUBSET, random_state=0)
    x, y = proxy_batch("cifar10", shared_data / "cifar10", 32)  # Suite-Zero's jacov needs B <= 32
    ours = {name: [] for name in THRESHOLDS}
    for arch in subset.arch:
        torch.manual_seed(0)
        scores = proxies.score(network(arch), x, y, list(THRESHOLDS))
        for name, value in scores.items():
            ours[name].append(value)
    for name, minimum in THRESHOLDS.items():
        values = pd.Series(ours[name], dtype=float)
        pub = subset[SUITE_ZERO[name]].reset_index(drop=True)
        ok = values.notna() & pub.notna()
        rho = spearman(values[ok], pub[ok])
        assert rho >= minimum, f"{name}: Spearman {rho:.3f} with Suite-Zero over {int(ok.sum())} architectures"
