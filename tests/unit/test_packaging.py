"""What `pip install .` gets, checked from the files: every distribution that the wheel's code
imports is declared (and every one that the tests and benchmarks import, as an extra), with a
lower and an upper bound; the lock files pin versions inside those bounds; the wheel lists
every package of the app and carries every template, static file and migration. (The wheel
itself is built, installed and run by tests/integration/test_install.py.)"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Callable, Iterable
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
OURS = {"web", "worker", "devtools", "celeryconfig", "tests", "bench", "dev"}


def declared(*extras: str) -> dict[str, Requirement]:
    lines = [*PROJECT["dependencies"]]
    for extra in extras:
        lines += PROJECT["optional-dependencies"][extra]
    return {
        canonicalize_name(requirement.name): requirement for requirement in map(Requirement, lines)
    }


def source_dir(package: str) -> Path:
    """Where setuptools reads `package` from: package-dir's mapping, else its own path."""
    mapping = SETUPTOOLS.get("package-dir", {})
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        mapped = mapping.get(".".join(parts[:cut]))
        if mapped is not None:
            return ROOT / mapped / Path(*parts[cut:])
    return ROOT / Path(*parts)


def wheel_modules() -> list[Path]:
    """The Python files the wheel carries: its packages' modules and its top-level modules."""
    modules = [ROOT / f"{name}.py" for name in SETUPTOOLS.get("py-modules", [])]
    return modules + [
        path
        for package in SETUPTOOLS["packages"]
        for path in sorted(source_dir(package).glob("*.py"))
    ]


def every_module() -> list[Path]:
    """The wheel's, the tests', the benchmarks', the development tools' and dev.py."""
    tops = ("web", "worker", "devtools", "migrations", "tests", "bench")
    return [
        ROOT / "dev.py",
        *wheel_modules(),
        *(p for top in tops for p in (ROOT / top).rglob("*.py")),
    ]


def imported_distributions(files: Iterable[Path]) -> dict[str, str]:
    """Distribution -> the first file importing it, for every third-party import in `files`
    (at the top of a module or inside a function)."""
    by_module = packages_distributions()
    found: dict[str, str] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top in sys.stdlib_module_names or top in OURS or top == "__future__":
                    continue
                # A module not installed here (an optional extra's) is named as its package.
                for distribution in by_module.get(top, [top]):
                    found.setdefault(canonicalize_name(distribution), str(path.relative_to(ROOT)))
    return found


def locked(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            package, _, version = line.partition("==")
            pins[canonicalize_name(package)] = version.split()[0]
    return pins


@pytest.mark.parametrize(
    ("modules", "extras"),
    [(wheel_modules, ()), (every_module, ("dev", "bench"))],
    ids=["wheel", "everything"],
)
def test_every_imported_distribution_is_declared(
    modules: Callable[[], list[Path]], extras: tuple[str, ...]
) -> None:
    requirements = declared(*extras)
    missing = {
        distribution: path
        for distribution, path in imported_distributions(modules()).items()
        if distribution not in requirements
    }
    assert missing == {}, "imported but not in pyproject.toml (distribution: first importer)"


def test_every_requirement_has_a_lower_and_an_upper_bound() -> None:
    for requirement in declared("dev", "bench").values():
        operators = {spec.operator for spec in requirement.specifier}
        assert operators & {">=", ">", "==", "~="}, f"{requirement}: no lower bound"
        assert operators & {"<", "<=", "==", "~="}, f"{requirement}: no upper bound"


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.lock", ()), ("requirements-dev.lock", ("dev", "bench"))],
)
def test_the_lock_pins_every_requirement_inside_its_bounds(
    lock: str, extras: tuple[str, ...]
) -> None:
    pins = locked(lock)
    for name, requirement in declared(*extras).items():
        assert name in pins, f"{lock} has no {name}: run make lock"
        assert requirement.specifier.contains(pins[name]), f"{lock}: {name}=={pins[name]}"


def test_the_dev_lock_pins_the_apps_packages_at_the_same_versions() -> None:
    app, dev = locked("requirements.lock"), locked("requirements-dev.lock")
    assert {name: dev.get(name) for name in app} == app


def _folders(top: Path) -> list[Path]:
    return [top, *(p for p in sorted(top.rglob("*")) if p.is_dir() and p.name != "__pycache__")]


def test_the_wheel_lists_every_package_of_the_app_and_every_data_folder() -> None:
    """setuptools takes only the listed packages (and warns about unlisted data folders)."""
    listed = set(SETUPTOOLS["packages"])
    app = {
        ".".join(folder.relative_to(ROOT).parts)
        for top in ("web", "worker")
        for folder in _folders(ROOT / top)
        if (folder / "__init__.py").is_file()
    }
    data = {
        ".".join([package, *folder.relative_to(ROOT / source).parts])
        for package, source in SETUPTOOLS["package-dir"].items()
        for folder in _folders(ROOT / source)
    }
    assert sorted((app | data) - listed) == [], "missing from pyproject.toml's packages"
    assert all(source_dir(package).is_dir() for package in listed)


def test_the_wheel_carries_every_template_static_file_and_migration() -> None:
    carried = set(wheel_modules())
    for package, patterns in SETUPTOOLS["package-data"].items():
        carried.update(path for pattern in patterns for path in source_dir(package).glob(pattern))
    for source in SETUPTOOLS["package-dir"].values():
        files = {
            path
            for path in (ROOT / source).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }
        assert sorted(files - carried) == [], f"{source}/: not in pyproject.toml's package-data"
