"""The layering of docs/architecture.md holds for every import, and modules stay small enough to read."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "medbench"
DOC = REPO / "docs" / "architecture.md"
MAX_LINES = 500
MAX_EXPERIMENT_LINES = 250


def documented_layers() -> dict[str, int]:
    """Unit (package or top-level module) → layer, from the table between the layer markers."""
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- layers: begin -->")[1].split("<!-- layers: end -->")[0]
    layers: dict[str, int] = {}
    for line in block.splitlines():
        match = re.match(r"^\|\s*(\d+)\s*\|(.*)\|\s*$", line)
        if match:
            for unit in re.findall(r"`([a-z_]+)`", match[2]):
                layers[unit] = int(match[1])
    return layers


def unit_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return "medbench" if relative.parts == ("__init__.py",) else relative.parts[0].removesuffix(".py")


def medbench_imports(path: Path) -> list[tuple[int, str]]:
    """(line, unit) of every medbench import in a module, inside functions and TYPE_CHECKING blocks too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        for module in modules:
            parts = module.split(".")
            if parts[0] == "medbench":
                found.append((node.lineno, parts[1] if len(parts) > 1 else "medbench"))
    return found


def test_every_unit_is_documented_and_every_import_goes_down() -> None:
    layers = documented_layers()
    assert len(layers) > 10, "the layer table in docs/architecture.md was not found"
    sources = sorted(PACKAGE.rglob("*.py"))
    units = {unit_of(path) for path in sources}
    assert sorted(units - set(layers)) == [], "packages or modules missing from docs/architecture.md"
    assert sorted(set(layers) - units) == [], "docs/architecture.md names units that do not exist"
    wrong = []
    for path in sources:
        unit = unit_of(path)
        for line, target in medbench_imports(path):
            if target != unit and layers[target] >= layers[unit]:
                wrong.append(
                    f"{path.relative_to(REPO)}:{line}: {unit} (layer {layers[unit]}) imports {target} "
                    f"(layer {layers[target]})"
                )
    assert wrong == []


def test_the_checker_sees_imports_inside_functions() -> None:
    module = PACKAGE / "experiment_exec.py"
    assert (module.read_text().count("from medbench.experiment import Experiment")) == 1
    assert any(target == "experiment" for _, target in medbench_imports(module))


def test_no_module_is_too_long_to_read() -> None:
    long = {
        str(path.relative_to(REPO)): count
        for path in PACKAGE.rglob("*.py")
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
    assert len((PACKAGE / "experiment.py").read_text().splitlines()) <= MAX_EXPERIMENT_LINES
