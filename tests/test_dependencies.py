"""The package's import graph (docs/architecture.md#dependency-direction), read from the source with ``ast``.

Every ``import`` counts wherever it is written: at module level, inside a function (lazy imports) or under
``if TYPE_CHECKING:``. ``from P import name`` counts as an import of ``P.name`` when that is a module of the
package, else of ``P``. Importing ``a.b`` is not counted as importing the package ``a`` itself (Python runs
``a/__init__.py`` first, but that would make every package trivially cyclic with its modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "imcsr_live"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Absolute names of everything ``name`` imports (package modules and third-party top-level names)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return found


GRAPH: dict[str, set[str]] = {name: _imports(name, path) for name, path in MODULES.items()}


def _internal(targets: set[str]) -> set[str]:
    return {t for t in targets if t in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_lazy_and_type_checking_imports() -> None:
    assert "imcsr_live.model.checkpoint" in GRAPH["imcsr_live.engine.model_source"]  # inside a function
    assert "qtpy" in GRAPH["imcsr_live.ui.main_window"] or any(_in(t, "qtpy") for t in GRAPH["imcsr_live.ui.app"])


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_between_modules() -> None:
    cycles = _cycles({name: _internal(targets) - {name} for name, targets in GRAPH.items()})
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("imcsr_live.recon", ("imcsr_live.ui", "imcsr_live.pipeline", "qtpy", "imcsr_live.synth")),
        ("imcsr_live.model", ("imcsr_live.ui", "imcsr_live.pipeline", "qtpy")),
        ("imcsr_live.synth", ("imcsr_live.ui", "imcsr_live.pipeline", "qtpy")),
        ("imcsr_live.engine", ("imcsr_live.ui", "imcsr_live.pipeline", "qtpy", "imcsr_live.train")),
    ],
)
def test_layers_do_not_import_outer_layers(layer: str, forbidden: tuple[str, ...]) -> None:
    bad = sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if _in(name, layer)
        for target in targets
        if any(_in(target, f) for f in forbidden)
    )
    assert not bad, "; ".join(bad)


# The simulator serves the demo, the tests and synthetic training data. The live path on a real rig
# (hardware backends and pattern images, reconstruction, engines, I/O, the window) never imports it; shared
# illumination geometry lives in imcsr_live/illumination.py. These modules may import it, each for its reason.
SIMULATOR_USERS = {
    "imcsr_live.hardware.simulated": "the simulated microscope backend",
    "imcsr_live.hardware.mm_devices": "simulated Micro-Manager devices (SimCamera) behind sim_demo.cfg",
    "imcsr_live.pipeline.preview": "the demo's simulated preview source",
    "imcsr_live.runs": "the demo run",
    "imcsr_live.cli": "`synth` and the reconstruction benchmark (lazy imports)",
    "imcsr_live.train": "synthetic training and evaluation data",
    # napari sample data is a synthetic cell, so that the plugin can be tried without a microscope; imported
    # lazily inside synthetic_cell(): the plugin's reader and widget never load the simulator.
    "imcsr_live.napari.sample": "napari sample data: a synthetic cell (lazy import)",
}


def _imports_simulator(module: str) -> bool:
    return any(_in(target, "imcsr_live.synth") for target in GRAPH[module])


def test_only_the_listed_modules_import_the_simulator() -> None:
    bad = sorted(
        name
        for name in GRAPH
        if not _in(name, "imcsr_live.synth")
        and not any(_in(name, user) for user in SIMULATOR_USERS)
        and _imports_simulator(name)
    )
    assert not bad, f"{bad} import imcsr_live.synth; move what they share into a neutral module (illumination.py)"


@pytest.mark.parametrize("user", sorted(SIMULATOR_USERS))
def test_each_listed_simulator_user_still_needs_it(user: str) -> None:
    assert any(_imports_simulator(name) for name in GRAPH if _in(name, user)), f"drop {user} from SIMULATOR_USERS"
