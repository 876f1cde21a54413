"""The one formatter of pydantic's validation errors (trainables/runs/spec.py) and the registries' single names."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trainables.runs.spec import TOP_LEVEL, SpecError, located, validation_problems


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(1, ge=1)


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    inner: _Inner = Field(default_factory=_Inner)
    lo: float = 0.0
    hi: float = 1.0

    @model_validator(mode="after")
    def _order(self) -> _Outer:
        if self.lo > self.hi:
            raise ValueError(f"lo ({self.lo}) must not exceed hi ({self.hi})")
        return self


def _errors(data) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        _Outer.model_validate(data)
    return info.value


def test_a_problem_names_the_dotted_path_and_the_bad_value():
    err = _errors({"inner": {"n": 0, "m": 2}})
    assert located(err) == [("name", "Field required"),
                            ("inner.n", "Input should be greater than or equal to 1 (got 0)"),
                            ("inner.m", "Extra inputs are not permitted (got 2)")]
    assert located(err, ("spec",))[1][0] == "spec.inner.n"
    assigned = [p.assigned() for p in validation_problems(err)]
    assert assigned[1] == "inner.n=0: Input should be greater than or equal to 1"


def test_a_model_level_check_has_no_path_and_no_value():
    err = _errors({"name": "x", "lo": 2.0})
    [problem] = validation_problems(err)
    assert problem.located() == (TOP_LEVEL, "lo (2.0) must not exceed hi (1.0)")  # no "Value error, " prefix
    assert problem.assigned() == "lo (2.0) must not exceed hi (1.0)"
    assert validation_problems(err, ("section",))[0].located() == ("section", "lo (2.0) must not exceed hi (1.0)")


def test_spec_error_lists_every_problem():
    err = SpecError("s.yaml", [("a.b", "bad (got 1)"), ("c", "worse")])
    assert str(err) == "invalid sweep spec s.yaml:\n  a.b: bad (got 1)\n  c: worse" and len(err.problems) == 2


def test_a_method_class_takes_its_name_from_the_registry():
    from trainables.methods import available_methods, get_method
    from trainables.methods.registry import registered_name

    for name in available_methods():
        cls = get_method(name)
        assert cls.name == name and registered_name(cls) == name
        assert "name" not in vars(cls) or vars(cls)["name"] == name  # set from the table, not written in the file


def test_spaces_and_benchmarks_carry_their_registry_key():
    from search_spaces.benchmarks.registry import BENCHMARKS, benchmark_class
    from search_spaces.space import available_spaces, get_space

    assert all(get_space(name).name == name for name in available_spaces())
    assert all(benchmark_class(name).name == name for name in BENCHMARKS)
