"""The services import one another in layers, never in a circle, and gateways import no services.

Payment rows (opened, refunds asked for) sit below deposits and orders; what a
payment's outcome does (a success applied, a close, a refund finished) sits
above them. Imports inside functions count too: a circle hidden in a function
is still a circle.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = "auction.services"


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _imports(path: Path) -> set[str]:
    """Every auction module ``path`` imports, wherever the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # ``from auction.services import deposits`` imports a module by its attribute name
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("auction")}


def _service_graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in (ROOT / "auction" / "services").glob("*.py") if path.stem != "__init__"}
    return {name: {target for target in _imports(path) if target in modules and target != name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting, done = [], set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return visiting[visiting.index(node):] + [node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph[node]):
            found = visit(target)
            if found:
                return found
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        found = visit(node)
        if found:
            return found
    return None


def test_the_services_import_graph_has_no_cycle():
    graph = _service_graph()
    assert f"{SERVICES}.deposits" in graph and f"{SERVICES}.payments" in graph  # the walk sees the modules
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_payment_rows_sit_below_deposits_and_orders_and_outcomes_above():
    graph = _service_graph()
    assert f"{SERVICES}.payment_rows" in graph[f"{SERVICES}.deposits"]
    assert f"{SERVICES}.payment_rows" in graph[f"{SERVICES}.orders"]
    assert {f"{SERVICES}.deposits", f"{SERVICES}.orders"} <= graph[f"{SERVICES}.payments"]


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_gateways_import_no_services():
    for path in (ROOT / "auction" / "gateways").glob("*.py"):
        assert not {name for name in _imports(path) if name.startswith(SERVICES)}, path.name
