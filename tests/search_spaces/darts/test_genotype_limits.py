"""The DARTS genotype parser's limits: a concat's `range(...)` is checked as a range, never expanded (a length of
10**9 costs nothing), bad input of any shape is a ValueError naming the field (never a TypeError or MemoryError),
an error shows at most `MAX_SHOWN` characters of the bad value, and nothing is ever evaluated."""

from __future__ import annotations

import tracemalloc

import pytest

from search_spaces.darts.genotype import FORMAT, MAX_SHOWN, Genotype, canonical

CELL = ("[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
        "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)]")


def genotype(normal_concat: str = "[2, 3, 4, 5]", normal: str = CELL) -> str:
    return f"Genotype(normal={normal}, normal_concat={normal_concat}, reduce={CELL}, reduce_concat=range(2, 6))"


@pytest.mark.parametrize("concat", ["[2, 3, 4, 5]", "(2, 3, 4, 5)", "range(2, 6)", "range(2, 6, 1)"])
def test_the_concat_forms_darts_writes_parse(concat):
    assert str(Genotype.parse(genotype(concat))) == str(Genotype.parse(genotype()))


@pytest.mark.parametrize("concat", ["range(0, 30000000)", "range(0, 1000000000)", "range(0, 10**9)",
                                    "range(0, 1000000000000000000000000)", "range(-5, 6)", "range(2, 6, 2)",
                                    "range(5, 1, -1)"])
def test_a_range_concat_is_refused_without_building_it(concat):
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="normal_concat") as info:
            Genotype.parse(genotype(concat))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, f"{peak / 1e6:.1f} MB: the range was built"  # range(0, 30000000) as a list: 1.75 GB
    assert len(str(info.value)) < 2 * MAX_SHOWN + len(FORMAT)


@pytest.mark.parametrize("concat", ["range()", "range(2, 6, 0)", "range('a', 'b')", "range(2, 6, step=1)",
                                    "range(True, 6)", "range(range(2, 6))", "range(2.0, 6)", "range(1, 2, 3, 4)",
                                    "range(*x)", "5", "'2345'", "{2, 3, 4, 5}", "{[1]: 2}", "[2, 3, 4]", "None"])
def test_every_bad_concat_is_a_value_error_naming_the_field(concat):
    with pytest.raises(ValueError, match="normal_concat"):
        Genotype.parse(genotype(concat))


@pytest.mark.parametrize("normal", ["5", "range(0, 8)", "[1, 2, 3, 4, 5, 6, 7, 8]", "None", "'abc'",
                                    "[('sep_conv_3x3', 0)] * 8"])
def test_a_cell_of_the_wrong_shape_is_a_value_error(normal):
    with pytest.raises(ValueError, match="normal"):
        Genotype.parse(genotype(normal=normal))


@pytest.mark.parametrize("text", ["[1, 2]", "[[1, 2], 3]", "{[1]: 2}", "[[(0, 99)] * 8, []]"])
def test_a_compact_encoding_of_the_wrong_shape_is_a_value_error(text):
    with pytest.raises(ValueError, match="compact"):
        Genotype.from_compact(text)


@pytest.mark.parametrize("text", [
    genotype(normal=CELL.replace("'sep_conv_3x3', 0", "'" + "x" * 10_000 + "', 0", 1)),  # a long op name
    genotype("[" + ", ".join(["2"] * 20_000) + "]"),                                       # a long concat list
    genotype("range(0, " + "9" * 4000 + ")"),                                              # a long number
    "not a genotype " * 5_000,
    "Genotype(" + "x" * 10_000 + "=1)",
    "Genotype(normal=" + "f(" * 200 + ")" * 200 + ")",
    "[[" + "(0, 1), " * 5_000 + "], [], []]",
    "[[" + "(0, '" + "y" * 10_000 + "')]," + "[]]",
])
def test_an_error_shows_at_most_max_shown_characters_of_the_bad_value(text):
    with pytest.raises(ValueError) as info:
        canonical(text)
    message = str(info.value).replace(FORMAT, "")
    assert len(message) < MAX_SHOWN + 150, message[:400]
    assert "..." in message


def test_the_parser_never_evaluates(tmp_path):
    marker = tmp_path / "evaluated"
    for concat in (f"__import__('pathlib').Path({str(marker)!r}).touch()",
                   f"range(__import__('pathlib').Path({str(marker)!r}).touch() or 6)"):
        with pytest.raises(ValueError, match="normal_concat"):
            Genotype.parse(genotype(concat))
    with pytest.raises(ValueError):
        Genotype.parse(genotype(normal=f"[__import__('pathlib').Path({str(marker)!r}).touch()]"))
    assert not marker.exists()
