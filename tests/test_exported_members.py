"""The public API is what __all__ says, and every name in it exists (httpx's habit)."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

import hdm
import streamer


def _submodules(package: ModuleType) -> set[str]:
    return {info.name for info in pkgutil.iter_modules(package.__path__)}


@pytest.mark.parametrize("package", [hdm, streamer], ids=["hdm", "streamer"])
def test_a_package_exports_exactly_its_public_api(package: ModuleType) -> None:
    public = {name for name in dir(package) if not name.startswith("_")}
    assert public - _submodules(package) == set(package.__all__)


@pytest.mark.parametrize("name", ["streamer.engine", "streamer.sinks", "streamer.sources"])
def test_subpackages_export_what_they_define(name: str) -> None:
    package = importlib.import_module(name)
    assert all(hasattr(package, member) for member in package.__all__)
    public = {member for member in dir(package) if not member.startswith("_")}
    assert public - _submodules(package) == set(package.__all__)


def test_the_packages_config_errors_are_named_apart_and_the_old_hdm_name_still_works() -> None:
    assert hdm.ModelConfigError.__name__ != streamer.ConfigError.__name__
    assert hdm.ConfigError is hdm.ModelConfigError
    assert issubclass(hdm.ModelConfigError, hdm.HDMError)
    assert not issubclass(hdm.ModelConfigError, streamer.StreamerError)
