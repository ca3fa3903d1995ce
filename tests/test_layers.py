"""privar's layers (DESIGN.md, "Layers"): a module imports only from its own layer or below.

Every module under platform/privar is parsed (not imported) and each of its ``privar`` imports,
at any depth (function-level, ``TYPE_CHECKING``, ``from privar import x``, relative), is checked
against the map below. ``privar/__init__.py`` is exempt: its lazy exports point anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

# The first name under ``privar`` -> its layer, bottom (1) to top (5): DESIGN.md's list, and where
# the modules it does not name sit. Same-layer imports are allowed.
LAYERS = {
    # 1: the study file, the registries' machinery, pure resource arithmetic
    "errors": 1, "config": 1, "study": 1, "registry": 1, "resources": 1,
    "console": 1,  # what the console shows, how long work has left
    # 2: the parts a study is made of
    "data": 2, "encoders": 2, "models": 2, "objectives": 2, "pareto": 2, "tracking": 2,
    "cluster": 2,  # Ray's nodes and what its autoscaler can add
    # 3: what trains, measures and reports with those parts
    "train": 3, "export": 3, "report": 3, "front": 3, "tension": 3,
    # 4: what runs many of those at once
    "search": 4, "farm": 4,
    # 5: the commands (recipes read a whole study)
    "recipes": 5, "cli": 5,
    "validate": 5,  # `privar validate`: reads a whole study; only the commands import it
}  # fmt: skip

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "privar"
EXEMPT = {"privar/__init__.py"}


def _lazy_exports() -> dict[str, str]:
    """``privar/__init__.py``'s ``_LAZY``: exported name -> the module it comes from."""
    for node in ast.parse((PACKAGE / "__init__.py").read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "_LAZY":
            return ast.literal_eval(node.value)
    return {}


LAZY = _lazy_exports()


def _module(path: Path) -> list[str]:
    """``platform/privar/data/stream.py`` -> ``["privar", "data", "stream"]``."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(source: str, package: list[str]) -> list[tuple[int, str]]:
    """(line, dotted name) of every privar module or name imported by ``source``, a module of
    the package ``package`` (``["privar", "data"]``; relative imports count from it)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if module == "privar":  # from privar import x: x is what is imported
                found += [(node.lineno, f"privar.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, module))
    return [(line, name) for line, name in found if name.split(".")[0] == "privar"]


def _layer(name: str) -> int | None:
    """The layer of a dotted privar name: ``privar.data.stream`` -> 2; a lazy export of
    ``privar/__init__.py`` (``privar.create_encoder``) has its module's layer; ``None`` for the
    package itself and for names privar does not have."""
    parts = name.split(".")
    if len(parts) < 2:
        return None
    if parts[1] in LAZY:
        return _layer(LAZY[parts[1]])
    return LAYERS.get(parts[1])


def test_every_module_has_a_layer() -> None:
    names = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")}
    missing = sorted(names - set(LAYERS) - {"__init__"})
    assert not missing, f"modules with no layer (add them to LAYERS): {missing}"


def test_no_import_goes_up() -> None:
    up = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        if rel in EXEMPT:
            continue
        module = _module(path)
        mine = _layer(".".join(module))
        package = module if path.name == "__init__.py" else module[:-1]
        for line, name in _imports(path.read_text(), package):
            theirs = _layer(name)
            if mine is not None and theirs is not None and theirs > mine:
                up.append(f"{rel}:{line} imports {name} (layer {theirs} > {mine})")
    assert not up, "imports that go up a layer:\n" + "\n".join(up)


def test_the_check_sees_every_kind_of_import() -> None:
    source = (
        "import os\n"
        "from privar import farm, create_encoder\n"
        "from ..search import tuner\n"
        "from . import common\n"
        "def f():\n"
        "    import privar.cli\n"
    )
    names = [n for _, n in _imports(source, ["privar", "train"])]
    assert names == ["privar.farm", "privar.create_encoder", "privar.search", "privar.train",
                     "privar.cli"]  # fmt: skip
    assert [_layer(n) for n in names] == [4, 2, 4, 3, 5]
