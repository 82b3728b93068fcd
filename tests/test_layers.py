"""The package's own imports (DESIGN.md §3): no module pair imports each other, no cycle, and no
import from a lower layer to a higher one. Every ``import`` counts, also those inside functions."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mmssl"

# lowest first; a module may import its own layer's modules (without a cycle) and lower layers'
LAYERS = [
    ("leaves", ["mmssl._version", "mmssl.kinds", "mmssl.io", "mmssl.distributed", "mmssl.config", "mmssl.checkpoint"]),
    ("data", ["mmssl.data"]),
    ("losses/encoders", ["mmssl.losses", "mmssl.encoders", "mmssl.model"]),
    ("methods", ["mmssl.pretext", "mmssl.contrastive"]),
    ("train/eval", ["mmssl.train", "mmssl.eval"]),
    ("recipes", ["mmssl.recipes"]),
    ("index", ["mmssl.index", "mmssl.embed"]),
    ("app/cli", ["mmssl.app", "mmssl.cli", "mmssl.__main__", "mmssl"]),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imported(name: str, path: Path) -> set[str]:
    """The mmssl modules ``name`` imports (``from pkg import sub`` names the submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


# Edges known to close a cycle, each with the change that removes it. Keep this empty: an entry
# that no longer exists fails test_known_cycle_edges_are_still_there, so it must then be deleted.
KNOWN_CYCLE_EDGES: set[tuple[str, str]] = set()

GRAPH = {name: _imported(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    matches = [(len(prefix), rank) for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer of LAYERS; add it where DESIGN.md §3 puts it"
    return max(matches)[1]  # the longest prefix decides: mmssl.data.x is data, not the mmssl facade


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)
    assert len(MODULES) > 80  # the walk really found the package


def test_no_import_goes_up_a_layer():
    upward = sorted(f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]})"
                    for a, targets in GRAPH.items() for b in targets if _layer(b) > _layer(a))
    assert upward == []


def _cycle() -> list[str] | None:
    """One import cycle among the modules, or None (depth-first search, white/grey/black)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "grey"
        stack.append(node)
        for target in sorted(GRAPH[node] - {b for a, b in KNOWN_CYCLE_EDGES if a == node}):
            if state.get(target) == "grey":
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = "black"
        return None

    for node in sorted(GRAPH):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle():
    assert _cycle() is None, " -> ".join(_cycle())


def test_known_cycle_edges_are_still_there():
    assert [edge for edge in sorted(KNOWN_CYCLE_EDGES) if edge[1] not in GRAPH[edge[0]]] == []


def test_the_walk_sees_module_level_and_function_level_imports():
    assert "mmssl.losses.infonce" in GRAPH["mmssl.losses"]  # a package __init__ re-exporting a module
    assert "mmssl.distributed" in GRAPH["mmssl.losses.infonce"]  # module level
    assert "mmssl.recipes.dual_encoder" in GRAPH["mmssl.cli"]  # inside a function
    assert _layer("mmssl.app.search") > _layer("mmssl.index.index") > _layer("mmssl.recipes.pretext")
    assert _layer("mmssl") == len(LAYERS) - 1 and _layer("mmssl.io") == 0 and _layer("mmssl.data.imageio") == 1


def test_the_cycle_search_finds_a_cycle(monkeypatch):
    monkeypatch.setitem(GRAPH, "mmssl.io", GRAPH["mmssl.io"] | {"mmssl.checkpoint"})  # checkpoint imports io
    assert _cycle() == ["mmssl.checkpoint", "mmssl.io", "mmssl.checkpoint"]
