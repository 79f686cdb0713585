"""Import every module of a plugin package, so that adding a plugin is one new file (its decorator
registers it) and no list has to be kept by hand."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil


def import_all(package_name: str) -> None:
    package = importlib.import_module(package_name)
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package_name}.{module.name}")


def plugin_names(package_name: str) -> list[str]:
    """The plugins of a package whose modules are named like the plugin they register (stages, scenarios), found
    without importing them: validating a config must not import the execution stack. `base` is the interface."""
    spec = importlib.util.find_spec(package_name)
    paths = list(spec.submodule_search_locations or []) if spec else []
    return sorted(m.name for m in pkgutil.iter_modules(paths) if not m.name.startswith("_") and m.name != "base")
