"""Public names of a package imported on first use (PEP 562), so that importing the package stays light.

Usage in a package's ``__init__.py``::

    _EXPORTS = {"read_volume": "volume_io", ...}     # public name -> submodule that defines it
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        exports: public name -> name of the submodule (relative to ``package``) that defines it.

    Returns:
        ``(__getattr__, __dir__)``: the first imports the defining submodule when a name is first used
        (``AttributeError`` for names not in ``exports``); the second lists the package's own globals and
        ``exports``.
    """
    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        import sys

        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
