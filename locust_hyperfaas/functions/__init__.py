"""Benchmark functions: what each one is, what it is sent and what it answers.

Every module in this package that defines ``SPEC`` adds a function; outside
packages add one through the ``locust_hyperfaas.functions`` entry point group,
whose entry points name a ``FunctionSpec``.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from importlib.metadata import entry_points

from .spec import FunctionSpec, Payload

__all__ = ["FunctionSpec", "Payload", "registry", "get"]

logger = logging.getLogger(__name__)

_registry: dict[str, FunctionSpec] | None = None


def _discover() -> dict[str, FunctionSpec]:
    found: dict[str, FunctionSpec] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "spec":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, FunctionSpec):
            found[spec.name] = spec
    for entry in entry_points(group="locust_hyperfaas.functions"):
        spec = entry.load()
        if not isinstance(spec, FunctionSpec):
            logger.warning("Entry point %s is not a FunctionSpec; ignored.", entry.name)
            continue
        if spec.name in found:
            logger.warning(
                "Function %s from %s shadows a built-in one.", spec.name, entry.value
            )
        found[spec.name] = spec
    return found


def registry() -> dict[str, FunctionSpec]:
    """All known functions by name, built-in ones first, in a stable order."""
    global _registry
    if _registry is None:
        _registry = _discover()
    return _registry


def get(name: str) -> FunctionSpec:
    """The function called ``name``; KeyError names the known ones."""
    try:
        return registry()[name]
    except KeyError:
        raise KeyError(
            f"unknown function {name!r}; known: {', '.join(registry())}"
        ) from None
