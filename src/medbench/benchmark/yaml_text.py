"""Reading YAML that a person wrote: batch files and `--option` values, strictly and in bounded time.

PyYAML's safe loader keeps the last of two equal keys (the first list vanishes), expands aliases
without limit (a 557-byte file of nested anchors is gigabytes) and recurses without bound on deep
nesting. Here a repeated key, any alias and nesting deeper than MAX_DEPTH are errors that name the
line, so what runs is exactly what the file says.
"""

from __future__ import annotations

from typing import Any

import yaml

from medbench.errors import ConfigError

MAX_DEPTH = 32
"""Deepest nesting of lists and mappings accepted (a batch file needs four)."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, repeated keys and deep nesting."""

    def __init__(self, stream: str, where: str) -> None:
        super().__init__(stream)
        self.where = where
        self.depth = 0

    def fail(self, mark: yaml.Mark | None, problem: str) -> ConfigError:
        line = f", line {mark.line + 1}" if mark is not None else ""
        return ConfigError(f"{self.where}{line}: {problem}")

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise self.fail(
                event.start_mark,
                f"YAML alias '*{str(event.anchor)[:40]}' is not accepted; expected every value written out",
            )
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self.fail(self.peek_event().start_mark, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:
                continue
            if repeated:
                raise self.fail(
                    key_node.start_mark, f"key {str(key)[:80]!r} appears twice in one mapping; expected each key once"
                )
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, where: str) -> Any:
    """Parse `text` strictly (see the module docstring); errors are ConfigErrors that start with `where`."""
    loader = _StrictLoader(text, where)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as error:
        raise ConfigError(f"{where}: not valid YAML ({error})") from None
    finally:
        loader.dispose()
