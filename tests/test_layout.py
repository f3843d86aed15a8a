"""How the code is laid out: imports run one way between the apps, and no module grows past
what a newcomer can read (docs/architecture.md)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 500


def imported_modules(path: Path) -> list[str]:
    """The absolute module names a file imports (relative imports stay inside its package)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_players_app_imports_nothing_from_sessions_app():
    offending = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "players_app").rglob("*.py"))
        for name in imported_modules(path)
        if name == "sessions_app" or name.startswith("sessions_app.")
    ]

    assert offending == []


def test_no_module_outside_migrations_and_tests_is_over_500_lines():
    too_long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for package in ("sessions_app", "players_app", "sessions_project")
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts and (lines := len(path.read_text().splitlines())) > MAX_LINES
    ]

    assert too_long == []
