"""The layout's rules, checked: engines stay apart, workflows never load client libraries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINES = ("dag", "instructions", "endpoint")
#: Workflow code records metrics and logs through Temporal (`workflow.metric_meter()`,
#: `workflow.logger`), so it loads no telemetry SDK either.
CLIENT_LIBRARIES = (
    "httpx",
    "httpcore",
    "openai",
    "anthropic",
    "redis",
    "opentelemetry",
    "prometheus_client",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("engine", ENGINES)
def test_no_engine_imports_another(engine: str) -> None:
    others = [f"workflows.{other}" for other in ENGINES if other != engine]
    for path in sorted((ROOT / "workflows" / engine).glob("*.py")):
        for module in imported_modules(path):
            assert not module.startswith(tuple(others)), f"{path.name} imports {module}"


def test_shared_workflow_code_imports_no_engine() -> None:
    engines = tuple(f"workflows.{engine}" for engine in ENGINES)
    for path in sorted((ROOT / "workflows" / "shared").glob("*.py")):
        for module in imported_modules(path):
            assert not module.startswith(engines), f"{path.name} imports {module}"


def test_workflow_modules_load_no_client_library() -> None:
    # A fresh interpreter: this test process has imported the clients for other tests.
    code = (
        "import sys\n"
        "import workflows.dag.workflow, workflows.instructions.workflow,"
        " workflows.endpoint.workflow\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {CLIENT_LIBRARIES!r}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


def production_files() -> list[Path]:
    files = [ROOT / "worker.py", ROOT / "cli.py", ROOT / "settings.py"]
    for package in ("workflows", "activities", "gateway"):
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def test_every_application_error_is_built_by_the_errors_module() -> None:
    builders = []
    for path in production_files():
        if path == ROOT / "activities" / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name == "ApplicationError":
                    builders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert builders == []


def test_gateway_raises_its_own_errors_not_http_ones() -> None:
    # Services and dependencies raise `gateway.errors`; one handler in the app answers them.
    raising = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            named = node.name if isinstance(node, ast.alias) else getattr(node, "attr", None)
            if named == "HTTPException":
                raising.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}")
    assert raising == []


def test_no_route_module_imports_another() -> None:
    # What several routers need lives beside them (`gateway.starts`, `gateway.deps`), so each
    # route module can be read, moved or dropped alone.
    for path in sorted((ROOT / "gateway" / "routes").glob("*.py")):
        for module in imported_modules(path):
            assert not module.startswith("gateway.routes"), f"{path.name} imports {module}"


def test_search_attribute_names_are_written_once() -> None:
    # Gateway, worker and outbox take the keys from `workflows.shared.search`; a name typed
    # anywhere else would drift from it unnoticed (a query that silently matches nothing).
    from workflows.shared.search import SEARCH_ATTRIBUTES

    written = []
    files = [ROOT / "worker.py"]
    for package in ("workflows", "activities", "gateway"):
        files += sorted((ROOT / package).rglob("*.py"))
    for path in files:
        if path == ROOT / "workflows" / "shared" / "search.py":
            continue
        tree = ast.parse(path.read_text())
        # Docstrings may name them for the reader.
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) in docstrings:
                    continue
                if any(name in node.value for name in SEARCH_ATTRIBUTES):
                    written.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert written == []


def test_settings_name_the_same_search_attributes() -> None:
    import settings
    from workflows.shared.search import SEARCH_ATTRIBUTES

    assert dict(settings.SEARCH_ATTRIBUTES) == dict(SEARCH_ATTRIBUTES)


def test_run_services_know_no_http() -> None:
    # `gateway.runs` reads runs for the routes and raises `gateway.errors`; what HTTP makes of
    # them is the app's and the routes' business.
    for path in sorted((ROOT / "gateway" / "runs").glob("*.py")):
        for module in imported_modules(path):
            assert module.split(".")[0] not in ("fastapi", "starlette", "sse_starlette"), (
                f"{path.name} imports {module}"
            )
