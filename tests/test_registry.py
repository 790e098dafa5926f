"""One registry rule for datasets and architectures: lookup, aliases, registration and the error type."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from medbench.architectures.registry import ARCHITECTURES, get_architecture, register_architecture
from medbench.data import datasets
from medbench.data.datasets import get_dataset, register_dataset
from medbench.errors import ConfigError, DatasetError, RegistryError
from medbench.registry import Registry


@dataclass(frozen=True)
class Entry:
    name: str
    value: int = 0


def _registry() -> Registry[Entry]:
    return Registry("widget", lambda entry: entry.name, aliases_of=lambda entry: (entry.name.removeprefix("2D."),))


def test_lookup_ignores_case_and_space_and_knows_aliases() -> None:
    registry = _registry()
    entry = registry.register(Entry("2D.Alpha"))
    assert registry.get(" 2d.ALPHA ") is entry and registry.get("alpha") is entry
    assert "ALPHA" in registry and "beta" not in registry
    assert list(registry) == ["2D.Alpha"] and registry.names() == ("2D.Alpha",) and len(registry) == 1


def test_unknown_names_list_the_known_ones_sorted() -> None:
    registry = _registry()
    for name in ("2D.Zeta", "2D.Alpha"):
        registry.register(Entry(name))
    with pytest.raises(RegistryError, match=r"unknown widget 'gamma'; known widgets: 2D.Alpha, 2D.Zeta"):
        registry.get("gamma")


def test_an_alias_two_entries_share_is_ambiguous() -> None:
    registry = _registry()
    registry.register(Entry("2D.Alpha"))
    registry.register(Entry("3D.Alpha"))
    assert registry.get("3d.alpha").name == "3D.Alpha"
    registry = Registry("widget", lambda e: e.name, aliases_of=lambda e: (e.name.partition(".")[2],))
    registry.register(Entry("2D.Alpha"))
    registry.register(Entry("3D.Alpha"))
    with pytest.raises(RegistryError, match="'alpha' is ambiguous: it could be 2D.Alpha, 3D.Alpha"):
        registry.get("alpha")


def test_registering_again_needs_replace_unless_it_is_the_same() -> None:
    registry = _registry()
    first = registry.register(Entry("2D.Alpha", 1))
    assert registry.register(Entry("2D.Alpha", 1)) is first
    with pytest.raises(RegistryError, match="already registered as '2D.Alpha'.*replace=True"):
        registry.register(Entry("2d.alpha", 2))
    registry.register(Entry("2d.alpha", 2), replace=True)
    assert registry.get("2D.ALPHA").value == 2 and registry.names() == ("2d.alpha",)
    copy = registry.copy()
    copy.register(Entry("2D.Beta"))
    assert "2D.Beta" not in registry


def test_datasets_and_architectures_follow_the_same_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_dataset(" CheXpert ") is get_dataset("chexpert")
    assert get_architecture(" DENSENET121 ") is get_architecture("2D.DenseNet121")
    for lookup in (lambda: get_dataset("nope"), lambda: get_architecture("nope")):
        with pytest.raises(RegistryError) as caught:
            lookup()
        assert isinstance(caught.value, ConfigError) and isinstance(caught.value, DatasetError)
    monkeypatch.setattr(datasets, "DATASETS", datasets.DATASETS.copy())
    spec = get_dataset("demo")
    from dataclasses import replace

    with pytest.raises(RegistryError, match="replace=True"):
        register_dataset(replace(spec, root="elsewhere"))
    register_dataset(replace(spec, root="elsewhere"), replace=True)
    info = get_architecture("SmallCNN")
    with pytest.raises(RegistryError, match="replace=True"):
        register_architecture(replace(info, input_size=(32, 32)))
    assert ARCHITECTURES.get("smallcnn") is info
