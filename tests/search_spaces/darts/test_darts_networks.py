"""Networks against numbers from the original code: parameter counts, NASLib's NB301 `params`, and the
behaviour the training protocol relies on (auxiliary logits, drop path)."""

import json

import pytest
import torch

from search_spaces.darts import DARTS_V1, DARTS_V2, PC_DARTS_CIFAR, Genotype, count_parameters, network, supernet
from search_spaces.darts.networks import DartsNetwork


def test_supernet_parameters_match_darts():
    # quark0/darts model_search.Network(16, 10, 8): 1,930,618 parameters (non-affine BN in the cells)
    assert count_parameters(supernet(C=16, layers=8, num_classes=10)) == 1_930_618


def test_darts_v2_cifar10_parameters():
    # DARTS' train.py logs "param size = 3.349342MB" for DARTS_V2 (C=36, 20 layers, auxiliary head excluded)
    net = network(DARTS_V2, num_classes=10)
    assert count_parameters(net) == 3_349_342
    assert count_parameters(net, auxiliary=True) > 3_349_342


@pytest.mark.parametrize("genotype, kwargs, millions", [
    (PC_DARTS_CIFAR, {}, 3.6),                                                    # PC-DARTS paper, Table 1
    (DARTS_V2, {"num_classes": 1000, "C": 48, "layers": 14, "imagenet": True}, 4.7),   # DARTS paper, Table 3
])
def test_published_parameter_counts(genotype, kwargs, millions):
    assert round(count_parameters(network(genotype, **kwargs)) / 1e6, 1) == millions


@pytest.mark.heavy
def test_nb301_sample_params_reproduced(shared_data):
    """NASLib's `params` for all 500 NB301 sample architectures, exactly.

    NASLib's NB301 graph at the commit that produced the file (automl/NASLib 6639fd15,
    naslib/search_spaces/nasbench301/graph.py) is C=32 (channels 32/64/128), 8 cells, no auxiliary head in
    the counted model, preprocessing BN affine and the cell ops' BNs non-affine (`affine=False` in `_set_ops`).
    DARTS' own network at the same size differs only by those ops' BN scale/shift.
    """
    data = json.loads((shared_data / "zero_cost" / "zc_nasbench301_small.json").read_text())
    rows = data["nasbench301"]["cifar10"]
    mismatches = []
    for key, value in rows.items():
        with torch.device("meta"):      # shapes only: no memory, no initialisation
            net = DartsNetwork(Genotype.from_compact(key), 10, C=32, layers=8, auxiliary=False, op_affine=False)
        if count_parameters(net) != round(value["params"] * 1e6):
            mismatches.append(key)
    assert not mismatches and len(rows) == 500


def test_op_affine_difference_is_the_ops_bn_parameters():
    a = DartsNetwork(DARTS_V1, 10, C=32, layers=8, auxiliary=False)
    b = DartsNetwork(DARTS_V1, 10, C=32, layers=8, auxiliary=False, op_affine=False)
    bn_ops = sum(m.weight.numel() + m.bias.numel() for cell in a.cells for m in cell.ops.modules()
                 if isinstance(m, torch.nn.BatchNorm2d) and m.affine)
    assert count_parameters(a) - count_parameters(b) == bn_ops > 0


def test_auxiliary_and_drop_path_contract():
    torch.manual_seed(0)
    net = network(DARTS_V2, num_classes=10, C=8, layers=5, auxiliary=True)
    x = torch.randn(3, 3, 32, 32)
    net.train()
    logits, aux = net(x)
    assert logits.shape == aux.shape == (3, 10)
    net.eval()
    ref = net(x)
    assert isinstance(ref, torch.Tensor)
    net.drop_path_prob = 0.5                       # never applied in eval mode
    assert torch.equal(net(x), ref)
    plain = network(DARTS_V2, num_classes=10, C=8, layers=5, auxiliary=False).train()
    assert isinstance(plain(x), torch.Tensor) and plain.drop_path_prob == 0.0


def test_drop_path_drops_whole_samples_of_non_identity_ops():
    from search_spaces.darts.cells import drop_path

    torch.manual_seed(0)
    x = torch.ones(2000, 2, 3, 3)
    y = drop_path(x, 0.3)
    per_sample = y.flatten(1)
    assert ((per_sample == 0).all(1) | torch.isclose(per_sample, torch.tensor(1 / 0.7)).all(1)).all()
    assert (per_sample == 0).all(1).float().mean().item() == pytest.approx(0.3, abs=0.04)


def test_bad_sizes_name_the_field():
    with pytest.raises(ValueError, match="layers"):
        supernet(C=16, layers=0)
    with pytest.raises(ValueError, match="C must be even"):
        network(DARTS_V2, C=15)
