"""One `Registry[T]` for every pluggable choice: discovery by package scan, no duplicates."""

from __future__ import annotations

import pytest

from lethe.errors import InputError
from lethe.registry import Registry


def test_a_registry_finds_by_name_refuses_duplicates_and_names_the_known_ones():
    things: Registry[int] = Registry("widget", field="widget")
    things.register("one")(1)
    things.add("two", 2)
    assert things.get("two") == 2 and things.names() == ["one", "two"] and "one" in things and len(things) == 2
    with pytest.raises(ValueError, match="widget 'one' registered twice"):
        things.add("one", 1)
    with pytest.raises(InputError, match="unknown widget 'three'; known widgets: one, two") as caught:
        things.get("three")
    assert caught.value.where.field == "widget"


def test_a_package_registry_imports_every_module_of_its_package_on_first_lookup(tmp_path, monkeypatch):
    """A new entry is one new file: nothing lists the modules."""
    package = tmp_path / "plugins_for_test"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from lethe.registry import Registry\nPLUGINS = Registry('plugin', package='plugins_for_test')\n"
    )
    for name in ("alpha", "beta"):
        (package / f"{name}.py").write_text(
            f"from plugins_for_test import PLUGINS\n\n@PLUGINS.register({name!r})\nclass Plugin:\n    pass\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    import plugins_for_test

    assert plugins_for_test.PLUGINS.names() == ["alpha", "beta"]
    assert plugins_for_test.PLUGINS.get("beta").__module__ == "plugins_for_test.beta"


def test_unlearning_methods_declare_what_they_need():
    from lethe.unlearn.base import METHODS

    assert METHODS.get("impact_ga").needs_token_weights and not METHODS.get("npo").needs_token_weights


def test_forget_strategies_cover_exact_and_every_unlearning_method():
    from lethe.forget import list_strategies, strategy_for
    from lethe.unlearn import list_methods

    assert set(list_strategies()) == {"exact", *list_methods()}
    exact, npo = strategy_for("exact"), strategy_for("npo")
    assert exact.exact and not exact.tunable and npo.tunable and not npo.exact
    with pytest.raises(InputError, match="exact replay retrains with the lineage's own recorded settings; steps"):
        exact.check({"steps": 3})
    with pytest.raises(InputError, match="retokenize"):
        npo.check({"retokenize": True})
    with pytest.raises(InputError, match="unknown method 'nope'; known methods: distill, dpo_idk, exact"):
        strategy_for("nope")
