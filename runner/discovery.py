"""Import every module of a plugin package, so that adding a plugin is one new file (its decorator
registers it) and no list has to be kept by hand."""

from __future__ import annotations

import importlib
import pkgutil


def import_all(package_name: str) -> None:
    package = importlib.import_module(package_name)
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package_name}.{module.name}")
