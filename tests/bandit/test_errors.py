"""Every exception the project defines derives from the one root, whatever its layer."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import ltrr.bandit
import ltrr.plugin
import ltrr.query_plans
from ltrr.bandit.errors import LtrrError
from ltrr.plugin.errors import BadRequest, HttpError


def _defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in (ltrr.bandit, ltrr.query_plans, ltrr.plugin):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseException)
                    and value.__module__ == module.__name__
                ):
                    found[f"{module.__name__}.{name}"] = value
    return found


def test_every_exception_the_project_defines_derives_from_ltrr_error():
    found = _defined_exceptions()
    # The walk saw the layers' own errors, not only the serving ones.
    for name in (
        "ltrr.bandit.policies.base.PolicyConfigError",
        "ltrr.query_plans.catalog.reader.CatalogError",
        "ltrr.query_plans.templates.TemplateError",
        "ltrr.plugin.runtime.upstream.UpstreamError",
        "ltrr.plugin.errors.BadRequest",
    ):
        assert name in found
    strays = sorted(name for name, cls in found.items() if not issubclass(cls, LtrrError))
    assert strays == []


def test_the_serving_package_raises_into_the_same_root():
    import ltrr.plugin.errors

    assert ltrr.plugin.errors.LtrrError is LtrrError
    error = BadRequest("no such thing")
    assert isinstance(error, HttpError)
    assert error.body() == {
        "error": {
            "root_cause": [{"type": "parse_exception", "reason": "no such thing"}],
            "type": "parse_exception",
            "reason": "no such thing",
        },
        "status": 400,
    }
