import pytest

from search_spaces.nb201 import OPS, all_architectures, canonical, to_string, to_tuple


def test_ops_in_benchmark_order():
    assert OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def test_enumeration_is_complete_and_unique():
    archs = all_architectures()
    assert len(archs) == 15625 == len(set(archs)) == 5 ** 6


def test_round_trip_every_architecture():
    for arch in all_architectures()[::97]:
        assert to_string(to_tuple(arch)) == arch


def test_known_string_and_edge_order():
    # Edge order of the benchmark's strings: (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2).
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    assert to_tuple(arch) == (3, 3, 3, 1, 3, 2)
    assert canonical(" " + arch + " ") == arch


@pytest.mark.parametrize("bad, token", [
    ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "conv_5x5"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "none~1"),
    ("|none~0|+|none~0|none~1|", "3 '+'-separated"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "needs 2 inputs"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "none~0|"),
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "none0"),
])
def test_malformed_strings_name_the_bad_token(bad, token):
    with pytest.raises(ValueError, match=token.replace("|", r"\|").replace("+", r"\+")):
        to_tuple(bad)


def test_bad_tuples():
    with pytest.raises(ValueError, match="6 edges"):
        to_string((0, 1, 2))
    with pytest.raises(ValueError, match="out of range"):
        to_string((0, 1, 2, 3, 4, 5))
