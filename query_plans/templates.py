"""Arm templates: Jinja2 in a sandbox, where every interpolated value becomes one JSON value.

The query is text a user typed and the template is text a catalog author wrote; neither may
break out of the JSON the other meant to produce. So the environment JSON-encodes whatever a
``{{ ... }}`` yields (a string arrives quoted and escaped, a list as a JSON array), templates
never add quotes or ``tojson`` of their own, and the output must parse as one JSON object or the
arm fails with a ``TemplateError`` (which fails that arm only, never the search).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import orjson
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ltrr.bandit.errors import LtrrError

__all__ = ["Encoded", "TemplateError", "TemplateRenderer"]

_ENCODE_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class TemplateError(LtrrError):
    """An arm template that cannot be compiled or rendered into a JSON query clause."""

    def __init__(self, path: Path, reason: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.reason = reason
        self.line = line


class Encoded:
    """A value already encoded as JSON, such as a query vector (hundreds of floats).

    It renders as a placeholder and goes into the parsed clause as an ``orjson.Fragment``, so
    those floats are never printed, parsed and printed again per search. A template inserts it
    whole (``{{ vector }}``); it cannot be indexed or filtered.
    """

    __slots__ = ("fragment", "token")

    def __init__(self, json: bytes) -> None:
        self.fragment = orjson.Fragment(json)
        self.token = f"\u0000ltrr-encoded-{id(self)}"


def _swap(value: Any, encoded: Mapping[str, Encoded]) -> Any:
    """Put each placeholder's fragment back where the template rendered it."""
    if isinstance(value, str):
        found = encoded.get(value)
        return found.fragment if found is not None else value
    if isinstance(value, dict):
        return {k: _swap(v, encoded) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, encoded) for v in value]
    return value


def _encode_default(value: Any) -> Any:
    """What orjson cannot encode by itself: read-only mappings, and undefined values (which
    must raise their own error rather than turn into something plausible)."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"a {type(value).__name__} is not a JSON value")


def _finalize(value: Any) -> str:
    """Every ``{{ ... }}`` passes through here: the only way a value reaches the output."""
    if isinstance(value, Encoded):
        return orjson.dumps(value.token).decode()
    if isinstance(value, jinja2.Undefined):
        # StrictUndefined raises UndefinedError; the sandbox's unsafe-attribute marker raises
        # SecurityError. Neither may ever render as text.
        value._fail_with_undefined_error()
    return orjson.dumps(value, default=_encode_default, option=_ENCODE_OPTIONS).decode()


def _template_line(exc: BaseException, filename: str) -> int | None:
    """Jinja rewrites tracebacks so that template frames carry the template's own lines."""
    line: int | None = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _render_failure(exc: Exception) -> tuple[str, BaseException]:
    """A short reason for an exception raised while rendering, and the exception that has it."""
    cause: BaseException = exc
    if isinstance(exc, orjson.JSONEncodeError) and exc.__cause__ is not None:
        cause = exc.__cause__  # raised inside _encode_default, e.g. an undefined list element
    if isinstance(cause, SecurityError):
        return f"forbidden by the sandbox: {cause}", cause
    if isinstance(cause, jinja2.UndefinedError):
        return f"undefined variable: {cause}", cause
    if isinstance(cause, orjson.JSONEncodeError | TypeError):
        return f"a value cannot be JSON-encoded: {cause}", cause
    return f"render failed: {type(cause).__name__}: {cause}", cause


class TemplateRenderer:
    """One sandboxed environment and a cache of compiled templates, per catalog version.

    A template compiles once per ``version`` (the catalog's digest, which covers the template
    bytes). An edited template therefore takes effect when its catalog reloads and validates,
    never half-way, and rendering costs no ``stat`` on the search path.
    """

    def __init__(self) -> None:
        self._env = ImmutableSandboxedEnvironment(
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            finalize=_finalize,
            auto_reload=False,
            cache_size=0,
        )
        self._cache: dict[tuple[Path, str], jinja2.Template] = {}

    def check(self, path: Path) -> None:
        """Compile the template afresh; a syntax error names the file and its line."""
        self._compile(path)

    def render(
        self, path: Path, variables: Mapping[str, Any], *, version: str = ""
    ) -> dict[str, Any]:
        """The query clause, parsed; any failure is a ``TemplateError`` naming the file."""
        template = self._cache.get((path, version))
        if template is None:
            template = self._cache[(path, version)] = self._compile(path)
        try:
            text = template.render(variables)
        except Exception as exc:
            reason, cause = _render_failure(exc)
            raise TemplateError(path, reason, _template_line(cause, str(path))) from exc
        try:
            clause = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise TemplateError(
                path, f"the output is not valid JSON ({exc}); output: {text[:300]!r}"
            ) from exc
        if not isinstance(clause, dict):
            raise TemplateError(
                path, f"must render one JSON object (a query clause), not {type(clause).__name__}"
            )
        encoded = {v.token: v for v in variables.values() if isinstance(v, Encoded)}
        if encoded:
            swapped: dict[str, Any] = _swap(clause, encoded)
            return swapped
        return clause

    def _compile(self, path: Path) -> jinja2.Template:
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TemplateError(path, f"cannot read the template: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise TemplateError(path, f"not UTF-8 text: {exc}") from exc
        try:
            code = self._env.compile(source, name=path.name, filename=str(path))
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(path, f"template syntax error: {exc.message}", exc.lineno) from exc
        # A plain dict of globals, not make_globals' ChainMap: every render copies the globals
        # into a new context, and copying a ChainMap doubles the render time.
        return self._env.template_class.from_code(self._env, code, dict(self._env.globals))
