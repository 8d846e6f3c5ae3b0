"""Everything else is in pyproject.toml. This adds one build step: the top-level folders the harness reads at run
time (configs, the mini benchmark, the paper's numbers) go into the wheel as omiti2v/_data/, where
omiti2v.paths.shipped finds them. A checkout (or an editable install) reads the folders themselves."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("conf", "benchmark_data/mini", "results/paper")


class BuildWithShippedData(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install keeps reading the checkout's folders
            return
        for name in SHIPPED:
            shutil.copytree(Path(name), Path(self.build_lib) / "omiti2v" / "_data" / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithShippedData})
