"""The package metadata: one version, the license, no unused dependency."""

import ast
import importlib.metadata
import pathlib
import re
import tomllib

import tfcompress

REPOSITORY = pathlib.Path(tfcompress.__file__).resolve().parents[1]


def pyproject():
    with open(REPOSITORY / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def test_version_is_the_installed_metadata():
    assert tfcompress.__version__ == importlib.metadata.version("tfcompress")


def test_version_is_written_once():
    project = pyproject()
    # pyproject.toml takes it from `tfcompress.__version__`, not a copy.
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "tfcompress.__version__"}


def test_license_is_apache_2_0():
    project = pyproject()["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (REPOSITORY / "LICENSE").read_text()
    assert text.startswith("Copyright 2026 The tfcompress Authors\n")
    assert "Apache License\n                           Version 2.0" in text
    assert "END OF TERMS AND CONDITIONS" in text


# The module each dependency's distribution installs.
IMPORT_NAMES = {
    "keras": "keras",
    "tensorflow": "tensorflow",
    "numpy": "numpy",
    "ai-edge-litert": "ai_edge_litert",
    "scikit-learn": "sklearn",
    "tensorly": "tensorly",
    "matplotlib": "matplotlib",
}


def imported_top_level_modules():
    modules = set()
    for path in (REPOSITORY / "tfcompress").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
            elif (
                # importlib.import_module("tensorly"): how CP loads it.
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                modules.add(node.args[0].value.split(".")[0])
    return modules


def requirement_name(requirement):
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()


def test_every_dependency_is_used_by_the_library():
    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    required = [
        requirement_name(r)
        for r in project["dependencies"]
        + extras["decomposition"]
        + extras["plots"]
    ]
    imported = imported_top_level_modules()
    unused = [
        name
        for name in required
        if IMPORT_NAMES.get(name, name.replace("-", "_")) not in imported
    ]
    assert unused == [], f"dependencies never imported by tfcompress: {unused}"
