"""robustqa.keyvalue: the one parser of KEY=VALUE options and name@key=value specs."""

from __future__ import annotations

import pytest

from robustqa.errors import ConfigError
from robustqa.keyvalue import parse_pair, parse_pairs, parse_spec


def test_values_are_yaml_scalars():
    assert parse_pair("attempts=3") == ("attempts", 3)
    assert parse_pairs([" use_embeddings = false", "name=a=b", "x="]) == {
        "use_embeddings": False,
        "name": "a=b",
        "x": None,
    }


@pytest.mark.parametrize("bad", ["novalue", "=3", " =3"])
def test_a_pair_without_key_or_equals_names_the_option(bad):
    with pytest.raises(ConfigError, match=r"--set needs KEY=VALUE"):
        parse_pair(bad, "--set")


def test_invalid_yaml_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_pair("k=[1")


def test_specs():
    assert parse_spec("robust") == ("robust", {})
    assert parse_spec("robust@consistency_k=1,attempts=4") == ("robust", {"consistency_k": 1, "attempts": 4})
    with pytest.raises(ConfigError, match="strategy spec 'naive@oops'"):
        parse_spec("naive@oops")
