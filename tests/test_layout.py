"""The repository's generic top-level package names, and the module names inside them.

Why: `flows`, `tasks`, `integrations`, `configs` and `sandbox` are names another installed distribution
could also claim, and a module such as `integrations/slack.py` would shadow the real `slack`
package whenever its folder lands on sys.path (running a flow file as a script does that).
Either mistake imports the wrong code without any error at the import itself.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
OWN_PACKAGES = ("phasegate", "flows", "tasks", "integrations", "configs", "sandbox")
SCANNED = ("flows", "tasks", "integrations", "sandbox")

# The import names of phasegate's dependencies (pyproject) and of the big ones they bring along.
DEPENDENCY_NAMES = {
    "prefect", "pydantic", "pydantic_settings", "httpx", "slack", "slack_sdk", "jira", "sqlalchemy", "alembic",
    "typer", "rich", "fastapi", "uvicorn", "yaml", "psycopg", "click", "starlette", "anyio", "requests",
}


def installed_import_names() -> set[str]:
    """Every top-level name some installed distribution other than phasegate provides."""
    return {name for name, dists in importlib.metadata.packages_distributions().items()
            if set(dists) != {"phasegate"}}


def module_names(package_dir: Path) -> set[str]:
    """The names of the modules and subpackages anywhere under `package_dir`."""
    names = {path.stem for path in package_dir.rglob("*.py") if path.stem != "__init__"}
    names |= {path.parent.name for path in package_dir.rglob("__init__.py") if path.parent != package_dir}
    return names


@pytest.mark.parametrize("name", OWN_PACKAGES)
def test_top_level_package_imports_from_this_repository(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent.parent == REPO_ROOT


@pytest.mark.parametrize("name", OWN_PACKAGES)
def test_no_other_installed_distribution_provides_the_name(name: str) -> None:
    assert set(importlib.metadata.packages_distributions().get(name, [])) == {"phasegate"}


def test_top_level_packages_resolve_to_this_repository_from_another_directory(tmp_path: Path) -> None:
    """A process started elsewhere (the Prefect worker, the `phasegate` script) finds the same code."""
    script = "import importlib\n" + "".join(
        f"print(importlib.import_module({name!r}).__file__)\n" for name in OWN_PACKAGES)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    files = [Path(line) for line in result.stdout.splitlines()]
    assert [f.resolve().parent.parent for f in files] == [REPO_ROOT] * len(OWN_PACKAGES)


def test_the_dependency_names_are_really_installed() -> None:
    """Guards the check below: a wrong list would let every module name pass."""
    assert {"prefect", "slack", "jira", "yaml", "sqlalchemy", "typer", "httpx", "pydantic"} <= installed_import_names()


@pytest.mark.parametrize("package", SCANNED)
def test_no_module_shadows_a_dependency(package: str) -> None:
    names = module_names(REPO_ROOT / package)
    assert names, f"{package}/ has no modules"
    shadowing = names & (DEPENDENCY_NAMES | installed_import_names())
    assert not shadowing, f"{package}/ has modules named after installed packages: {sorted(shadowing)}"
