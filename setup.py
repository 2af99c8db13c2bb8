"""Package discovery for gensr-bench; everything else is declared in pyproject.toml.

The first-party plugins live in ``plugins/`` but install as the package ``gensr_bench_plugins``.
pyproject's static ``[tool.setuptools.packages.find]`` cannot rename a folder, so the packages
are discovered here: a new subpackage (or a data folder such as the leaderboard templates) ships
in the wheel without anyone editing a list, which is how ``gensr_bench.alignment`` once went
missing from the wheel while an entry point named it.
"""

from setuptools import find_namespace_packages, setup

# Namespace discovery so that data-only folders (gensr_bench/templates/leaderboard) are packages
# too: their files then ship as package data instead of being skipped with a warning.
CORE = find_namespace_packages(include=["gensr_bench", "gensr_bench.*"], exclude=["*.__pycache__"])
# The same for the plugins (the checkpoint folders are data-only); their data files are declared
# in pyproject.toml.
PLUGINS = ["gensr_bench_plugins"] + [
    f"gensr_bench_plugins.{name}"
    for name in find_namespace_packages("plugins", exclude=["*.__pycache__"])
]

setup(
    packages=CORE + PLUGINS,
    package_dir={"gensr_bench": "gensr_bench", "gensr_bench_plugins": "plugins"},
)
