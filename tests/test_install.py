"""phasegate installs beside a Prefect project: from its wheel, into a fresh virtual environment.

A Prefect user's repository very often has its own `flows/`, `tasks/` and `configs/` packages, and a
worker runs from that directory. The wheel must bring one import name, `phasegate`, and every
deployment entrypoint of prefect.yaml must load there through Prefect's own loader.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def run(*args: str | Path, cwd: Path) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a copy, so that building leaves no build/ or egg-info behind in the checkout
    shutil.copytree(REPO, source, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".phasegate"))
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, source, cwd=out)
    [built] = out.glob("phasegate-*.whl")
    return built


def test_the_wheel_holds_one_top_level_name(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist() if not name.split("/")[0].endswith(".dist-info")}
        names = archive.namelist()
    assert tops == {"phasegate"}
    for path in ("phasegate/flows/phases.py", "phasegate/configs/engagements/acme-churn.yaml",
                 "phasegate/sandbox/page.html", "phasegate/migrations/script.py.mako"):
        assert path in names


def test_every_entrypoint_loads_from_a_project_with_its_own_flows(wheel: Path, tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    # phasegate's dependencies come from this test's environment (a .pth line, whose own .pth files,
    # the editable phasegate among them, are not processed); phasegate itself only from the wheel.
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel, cwd=tmp_path)

    project = tmp_path / "project"
    for own in ("flows", "tasks", "configs", "integrations"):
        (project / own).mkdir(parents=True)
        (project / own / "__init__.py").write_text("")
    (project / "flows" / "phases.py").write_text("raise ImportError('the project\\'s own flows.phases was imported')\n")
    entrypoints = [d["entrypoint"] for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]]
    script = (
        "import phasegate, flows\n"
        "from prefect.flows import load_flow_from_entrypoint\n"
        f"for entrypoint in {entrypoints!r}:\n"
        "    print(entrypoint, load_flow_from_entrypoint(entrypoint).name)\n"
        "print(phasegate.__file__)\n"
        "print(flows.__file__)\n")
    out = run(python, "-c", script, cwd=project).splitlines()
    assert [line.split()[0] for line in out[:-2]] == entrypoints
    assert str(site) in out[-2] and "/project/flows/" in out[-1]
