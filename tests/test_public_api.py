"""The public surface: ``__all__`` is sorted and importable, modules say what they do."""

from __future__ import annotations

import ast
import importlib
import types
from pathlib import Path

import pytest

import spectrum_tools

PACKAGE = Path(spectrum_tools.__file__).resolve().parent


def _public_modules() -> list[Path]:
    """Every module file of the package whose dotted path has no ``_private`` part."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if any(p.startswith("_") and p != "__init__" for p in parts):
            continue
        if "__pycache__" in path.parts:
            continue
        found.append(path)
    return found


def test_all_is_sorted() -> None:
    assert spectrum_tools.__all__ == sorted(spectrum_tools.__all__)


def test_all_equals_the_public_names_of_the_package() -> None:
    # Every public name the package root binds is in __all__, and nothing else is
    # (submodules are attributes too once imported: they are not names of the API).
    bound = {
        name
        for name, value in vars(spectrum_tools).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(spectrum_tools.__all__) - {"__version__"} == bound


def test_all_has_no_duplicates() -> None:
    assert len(set(spectrum_tools.__all__)) == len(spectrum_tools.__all__)


@pytest.mark.parametrize("name", spectrum_tools.__all__)
def test_every_name_in_all_is_importable(name: str) -> None:
    # ``from spectrum_tools import name`` is exactly this attribute lookup.
    assert getattr(spectrum_tools, name, None) is not None, name


def test_pipeline_entry_points_are_public() -> None:
    for name in ("read_updates", "validate_updates", "plan_updates", "write_table", "Plan"):
        assert name in spectrum_tools.__all__


def test_version_is_a_string() -> None:
    assert isinstance(spectrum_tools.__version__, str)
    assert spectrum_tools.__version__.count(".") >= 1


def test_public_modules_found() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in _public_modules()}
    wanted = {"__init__.py", "cells.py", "sheets/__init__.py", "sheets/reading.py"}
    assert wanted | {"validation.py", "planning.py", "statuses.py"} <= names


@pytest.mark.parametrize(
    "path", _public_modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent))
)
def test_every_public_module_has_a_docstring(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    doc = ast.get_docstring(tree)
    assert (doc or "").strip(), f"{path.relative_to(PACKAGE.parent)} has no module docstring"


@pytest.mark.parametrize(
    "module",
    ["errors", "schema", "statuses", "cells", "sheets", "validation", "planning"],
)
def test_module_all_names_exist(module: str) -> None:
    mod = importlib.import_module(f"spectrum_tools.{module}")
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert missing == []


def test_every_exported_exception_derives_from_spectrum_error() -> None:
    for name in spectrum_tools.__all__:
        obj = getattr(spectrum_tools, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, spectrum_tools.SpectrumError), name


def test_input_errors_are_value_errors() -> None:
    # ``except ValueError`` around read_updates keeps working.
    assert issubclass(spectrum_tools.SpreadsheetError, ValueError)
    assert issubclass(spectrum_tools.ColumnError, spectrum_tools.SpreadsheetError)
    assert issubclass(spectrum_tools.ConfigError, ValueError)
