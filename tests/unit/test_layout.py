"""The layout's rules, checked: data flows one way (gateway -> workflows -> activities, all of
them over the shared `kernel`), engines stay apart, workflows never load client libraries."""

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


#: The project's own top-level packages and modules.
PROJECT = ("kernel", "activities", "workflows", "gateway", "cli", "settings", "worker")


def package_imports(package: str) -> list[tuple[str, str]]:
    """(file, imported module) for every import in `package` of a project module."""
    return [
        (str(path.relative_to(ROOT)), module)
        for path in sorted((ROOT / package).rglob("*.py"))
        for module in sorted(imported_modules(path))
        if module.split(".")[0] in PROJECT
    ]


def test_kernel_imports_no_project_package() -> None:
    # Every layer imports the kernel, so it may import none of them.
    assert [
        (path, module)
        for path, module in package_imports("kernel")
        if module.split(".")[0] != "kernel"
    ] == []


def test_examples_import_nothing_of_ours() -> None:
    # The demo service and its stand-in LLM run as they are, beside any version of the engine;
    # the test fakes build on them, never the other way round.
    assert package_imports("examples") == []


def test_activities_import_no_workflows_or_gateway() -> None:
    upward = ("workflows", "gateway", "cli", "settings", "worker")
    assert [
        (path, module)
        for path, module in package_imports("activities")
        if module.split(".")[0] in upward
    ] == []


def test_workflows_import_only_models_from_activities() -> None:
    # Activity names and their input/output models live in `activities/*/models.py`, I/O-free;
    # anything else in activities/ is an implementation a workflow must not load.
    assert [
        (path, module)
        for path, module in package_imports("workflows")
        if module.split(".")[0] == "activities" and not module.endswith(".models")
    ] == []


def test_workflows_import_no_gateway() -> None:
    upward = ("gateway", "cli", "settings", "worker")
    assert [
        (path, module)
        for path, module in package_imports("workflows")
        if module.split(".")[0] in upward
    ] == []


def test_no_package_imports_the_cli_or_the_worker() -> None:
    # Both are composition roots at the top: they import the layers, never the other way.
    roots = ("cli", "worker")
    assert [
        (path, module)
        for package in ("kernel", "activities", "workflows", "gateway")
        for path, module in package_imports(package)
        if module.split(".")[0] in roots
    ] == []


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
    files = [ROOT / "worker.py"]
    for package in ("kernel", "workflows", "activities", "gateway", "cli", "settings"):
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def test_every_application_error_is_built_by_the_errors_module() -> None:
    builders = []
    for path in production_files():
        if path == ROOT / "kernel" / "errors.py":
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
    # Gateway, worker, outbox, settings and the dev stack take the keys from `kernel.search`;
    # a name typed anywhere else would drift from it unnoticed (a query that matches nothing).
    from kernel.search import SEARCH_ATTRIBUTES

    written = []
    files = [ROOT / "worker.py"]
    for package in ("kernel", "workflows", "activities", "gateway", "settings", "cli"):
        files += sorted((ROOT / package).rglob("*.py"))
    for path in files:
        if path == ROOT / "kernel" / "search.py":
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


def test_run_services_know_no_http() -> None:
    # `gateway.runs` reads runs for the routes and raises `gateway.errors`; what HTTP makes of
    # them is the app's and the routes' business.
    for path in sorted((ROOT / "gateway" / "runs").glob("*.py")):
        for module in imported_modules(path):
            assert module.split(".")[0] not in ("fastapi", "starlette", "sse_starlette"), (
                f"{path.name} imports {module}"
            )


def test_reading_a_model_s_answer_is_pure() -> None:
    # The ladder's cheap rungs (parse, repair, validate) are plain functions, tested
    # synchronously; only the ladder's climb asks a model again.
    path = ROOT / "activities" / "llm" / "structured.py"
    for module in imported_modules(path):
        assert module.split(".")[0] not in ("temporalio", *CLIENT_LIBRARIES), (
            f"{path.name} imports {module}"
        )
