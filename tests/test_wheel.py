"""A real wheel: built from an sdist as `python -m build` does, installed into a fresh venv,
it runs from a folder outside the checkout with the configs, the mini benchmark and the paper's numbers it
ships (omiti2v/_data/), not the checkout's.

Offline: the build uses this environment's setuptools (`--no-build-isolation`), pip installs the wheel alone
(`--no-deps --no-index`), and the venv sees this environment's packages through a .pth line, so its
dependencies resolve without a download (a venv made from a venv's python with --system-site-packages would
see the base interpreter's packages, not this environment's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What an sdist is made from; MANIFEST.in and setup.py decide what of it reaches the sdist and the wheel.
SOURCE = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "omiti2v", "conf", "benchmark_data", "results/paper")


def run(argv: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    for name in SOURCE:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copyfile
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        copy(REPO / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    sdist = run([sys.executable, "-c", "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))",
                 str(tmp / "sdist")], src).strip().splitlines()[-1]
    with tarfile.open(tmp / "sdist" / sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(unpacked),
         "-w", str(tmp / "dist")], tmp)
    (wheel,) = (tmp / "dist").glob("omiti2v-*.whl")
    return wheel


def venv_with(wheel: Path, tmp: Path) -> Path:
    """A fresh venv holding the wheel, this environment's packages behind it; returns its bin folder."""
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp).strip())
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "zz_harness_dependencies.pth").write_text("".join(f"{p}\n" for p in ours))  # after the wheel's own files
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)], tmp)
    return venv / "bin"


@pytest.mark.slow
def test_wheel_runs_outside_the_checkout_from_its_own_data(tmp_path):
    bin_dir = venv_with(build_wheel(tmp_path), tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OMITI2V_RESULTS", "OMITI2V_DATA")}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")

    where = run([str(bin_dir / "python"), "-c", "import omiti2v, omiti2v.paths as p; print(omiti2v.__file__); "
                 "print(p.source_checkout()); print(p.CONF_DIR)"], work, env).split()
    package = Path(where[0]).parent
    assert package.is_relative_to(tmp_path / "venv") and where[1] == "None"
    assert Path(where[2]) == package / "_data" / "conf" and (package / "_data" / "conf" / "smoke.yaml").is_file()

    validated = run([str(bin_dir / "omiti2v"), "validate-data"], work, env)
    assert f"{package / '_data' / 'benchmark_data' / 'mini'}: valid, 12 samples" in validated

    # The smoke eval's first stage, one sample, configs from the wheel.
    run([str(bin_dir / "omiti2v-eval"), "--config-name", "smoke", "stages=[generate]", "data.limit=1",
         f"results_root={tmp_path / 'results'}"], work, env, timeout=600)
    videos = tmp_path / "results" / "runs" / "mini" / "wan2.1-tiny" / "scalar-paper" / "videos"
    assert sorted(p.name for p in videos.iterdir()) == ["mini_0.json", "mini_0.mp4"]

    # The paper's numbers and the schedule configs the tables read ship too.
    run([str(bin_dir / "omiti2v"), "tables", "--runs", str(tmp_path / "results" / "runs"), "--out", str(tmp_path / "t")],
        work, env)
    assert "| Wan 2.1 | baseline |  | 72.35 |" in (tmp_path / "t" / "omiti2v" / "baselines.md").read_text()
