"""The public surface: ``__all__`` is sorted and importable, modules say what they do."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
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


def _type_checking_imports() -> dict[str, str]:
    """Public name -> module, from the root's ``if typing.TYPE_CHECKING:`` imports (what
    type checkers and IDEs see; at run time the names are loaded lazily)."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "typing.TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom), ast.unparse(stmt)
                for alias in stmt.names:
                    found[alias.asname or alias.name] = str(stmt.module)
    return found


def test_all_equals_the_public_names_of_the_package() -> None:
    # What type checkers see is exactly __all__, and every name resolves to the object
    # its module defines (the lazy table and the static imports agree).
    static = _type_checking_imports()
    assert sorted(static) == spectrum_tools.__all__
    for name, module in static.items():
        assert getattr(spectrum_tools, name) is getattr(importlib.import_module(module), name)
    # Nothing else public is bound on the root, even with every name loaded (submodules
    # are attributes too once imported: they are not names of the API).
    bound = {
        name
        for name, value in vars(spectrum_tools).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert bound <= set(spectrum_tools.__all__)
    assert set(spectrum_tools.__all__) <= set(dir(spectrum_tools))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="send_update"):
        _ = spectrum_tools.send_update  # type: ignore[attr-defined]
    with pytest.raises(ImportError, match="send_update"):
        from spectrum_tools import send_update  # type: ignore[attr-defined]  # noqa: F401


def test_star_import_gives_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from spectrum_tools import *", namespace)  # noqa: S102 (a star import is module-level only)
    assert set(spectrum_tools.__all__) <= set(namespace)


def test_a_public_name_beats_the_submodule_it_shares_after_a_lazy_load() -> None:
    # ``reconcile`` is a public function and a submodule; importing the submodule first
    # (as the CLI's reconcile command does) must not turn the public name into a module.
    code = (
        "import types, spectrum_tools.reconcile, spectrum_tools\n"
        "from spectrum_tools import reconcile\n"
        "assert not isinstance(spectrum_tools.reconcile, types.ModuleType)\n"
        "assert reconcile is spectrum_tools.reconcile\n"
        "print(reconcile.__module__, reconcile.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["spectrum_tools.reconcile", "reconcile"]


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
