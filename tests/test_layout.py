"""The shape of the installed package: one import name, `phasegate`, and no module named after a dependency.

Why: a Prefect user's own repository very often has `flows/` and `tasks/` packages of its own. phasegate's
top-level folders (flows/, tasks/, integrations/, configs/, sandbox/) are linked into phasegate/ and
installed as `phasegate.flows`, `phasegate.tasks`, ..., so nothing of ours can be shadowed by, or shadow,
a user's package. A module such as `integrations/slack.py` would still shadow the real `slack` package
whenever its folder lands on sys.path (running a file as a script does that), so that is guarded too.
tests/test_install.py checks the same from a built wheel in a fresh virtual environment.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
LINKED = ("flows", "tasks", "integrations", "configs", "sandbox")

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


def test_the_distribution_provides_one_import_name() -> None:
    provided = {name for name, dists in importlib.metadata.packages_distributions().items() if "phasegate" in dists}
    assert provided == {"phasegate"}


@pytest.mark.parametrize("name", LINKED)
def test_each_top_level_folder_is_a_subpackage_of_phasegate(name: str) -> None:
    link = REPO_ROOT / "phasegate" / name
    assert link.is_symlink() and link.resolve() == REPO_ROOT / name
    module = importlib.import_module(f"phasegate.{name}")
    assert module.__file__ is not None
    assert Path(module.__file__).resolve() == REPO_ROOT / name / "__init__.py"


def test_subpackages_resolve_to_this_repository_from_another_directory(tmp_path: Path) -> None:
    """A process started in a Prefect project that has its own flows/ and tasks/ finds phasegate's."""
    for own in ("flows", "tasks", "configs"):
        (tmp_path / own).mkdir()
        (tmp_path / own / "__init__.py").write_text("MINE = True\n")
    script = "import importlib\n" + "".join(
        f"print(importlib.import_module('phasegate.{name}').__file__)\n" for name in LINKED)
    script += "import flows; print(flows.MINE)\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    *files, mine = result.stdout.splitlines()
    assert [Path(f).resolve().parent for f in files] == [REPO_ROOT / name for name in LINKED]
    assert mine == "True"


def test_the_dependency_names_are_really_installed() -> None:
    """Guards the check below: a wrong list would let every module name pass."""
    assert {"prefect", "slack", "jira", "yaml", "sqlalchemy", "typer", "httpx", "pydantic"} <= installed_import_names()


@pytest.mark.parametrize("package", LINKED)
def test_no_module_shadows_a_dependency(package: str) -> None:
    names = module_names(REPO_ROOT / package)
    assert names, f"{package}/ has no modules"
    shadowing = names & (DEPENDENCY_NAMES | installed_import_names())
    assert not shadowing, f"{package}/ has modules named after installed packages: {sorted(shadowing)}"


def test_modules_stay_small() -> None:
    """A module past ~300 lines holds more than one concern (STYLE.md): split it by what it holds."""
    sizes = {path.relative_to(REPO_ROOT): len(path.read_text().splitlines())
             for path in (REPO_ROOT / "phasegate").rglob("*.py") if "versions" not in path.parts}
    sizes |= {path.relative_to(REPO_ROOT): len(path.read_text().splitlines())
              for name in LINKED for path in (REPO_ROOT / name).rglob("*.py")}
    assert len(sizes) > 100
    assert {str(path): n for path, n in sizes.items() if n > 300} == {}


def test_the_performance_page_shows_the_benchmarks_figures_as_generated() -> None:
    """docs/performance.md's table is `python -m bench.report` over bench/results, not typed by hand
    (`python -m bench.report --write docs/performance.md` after a benchmark run puts it there)."""
    done = subprocess.run([sys.executable, "-m", "bench.report"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60, check=True)
    page = (REPO_ROOT / "docs" / "performance.md").read_text()
    begin, end = "<!-- bench.report -->", "<!-- /bench.report -->"
    assert page[page.index(begin) + len(begin):page.index(end)].strip() == done.stdout.strip()
