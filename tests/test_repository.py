"""Repository hygiene: CI runs the README's command, and the code passes ruff."""

import functools
import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    """The shell commands of README.md's fenced ``bash`` blocks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) == 2, commands
    test_command = next(c for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


def ruff():
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    return exe


LINTED = ["skplice", "tests", "benchmarks", "examples", "docs"]


def test_linted_folders_exist():
    # ruff exits 2 on a missing folder; say which one instead.
    missing = [name for name in LINTED if not (ROOT / name).is_dir()]
    assert not missing, f"missing folders: {missing}"


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(args):
    result = subprocess.run(
        [ruff(), *args, *LINTED],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_variable_names_the_shared_data(monkeypatch, tmp_path):
    """Tests, examples and benchmarks find the shared vocabularies through one variable,
    which the README's contributor notes name."""
    retired = ("SKPLICE_TEST_VOCAB_DIR", "SKPLICE_VOCAB_DIR")
    mentions = [
        str(path.relative_to(ROOT))
        for folder in ("skplice", "tests", "examples", "benchmarks", "docs")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".py", ".rst", ".md", ".cfg", ".toml"}
        and path != Path(__file__)
        and any(name in path.read_text(encoding="utf-8") for name in retired)
    ]
    for name in ("README.md", "setup.cfg", "pyproject.toml"):
        if any(variable in (ROOT / name).read_text(encoding="utf-8") for variable in retired):
            mentions.append(name)
    assert mentions == []
    assert "SKPLICE_SHARED_DATA" in (ROOT / "README.md").read_text(encoding="utf-8")

    shared = tmp_path / "shared-data"
    (shared / "vocab").mkdir(parents=True)
    for name in ("laion.txt", "laion_bigrams.txt", "mscoco.txt"):
        (shared / "vocab" / name).write_text("dog\ncat\n")
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    monkeypatch.syspath_prepend(str(ROOT))
    offline = importlib.import_module("_offline")
    data = importlib.import_module("benchmarks._data")  # before the variable: its VOCAB_DIR
    monkeypatch.setenv("SKPLICE_SHARED_DATA", str(shared))  # stays right for other tests
    assert offline._vocabulary_folder() == shared / "vocab"
    assert data.shared_vocab_dir() == shared / "vocab"


def test_readme_says_how_to_install_a_cpu_only_torch():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "--index-url https://download.pytorch.org/whl/cpu" in " ".join(readme.split())


def test_each_xdist_worker_runs_torch_and_blas_on_one_thread():
    # One worker per core, each on every core, oversubscribed the suite several times
    # over: tests/conftest.py limits a worker's pools to one thread (unless the user set
    # OMP_NUM_THREADS), also for libraries imported before it and for child processes.
    check = (
        "import os, sys, torch, numpy; from threadpoolctl import threadpool_info; "
        "sys.path.insert(0, 'tests'); import conftest; "
        "blas = {p['internal_api']: p['num_threads'] for p in threadpool_info()}; "
        "print(torch.get_num_threads(), os.environ.get('OMP_NUM_THREADS'), max(blas.values()))"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    run = functools.partial(
        subprocess.run, [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True
    )
    worker = run(env=env | {"PYTEST_XDIST_WORKER": "gw0"})
    assert worker.returncode == 0, worker.stderr
    assert worker.stdout.split() == ["1", "1", "1"]
    # Outside xdist (pytest -n 0, a single process) nothing is limited.
    alone = run(env={k: v for k, v in env.items() if k != "PYTEST_XDIST_WORKER"})
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.split()[1] == "None"
