"""The catalogs being served, each with its agent (the bandit's door), embedder and entities.

Catalogs reload when their file or a template changes (polled) or on SIGHUP. A reload swaps
one reference, so requests in flight finish with the catalog they started with; a catalog that
no longer validates is not swapped in, and the reason is logged.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ltrr.bandit.agent import Agent
from ltrr.plugin.runtime.entities import EntityCache
from ltrr.query_plans.catalog import Catalog, CatalogError, load_catalog
from ltrr.query_plans.embed import Embedder

log = logging.getLogger("ltrr.catalogs")


@dataclass(slots=True)
class CatalogRuntime:
    catalog: Catalog
    agent: Agent
    entities: EntityCache | None
    embedder: Embedder | None

    @property
    def state_key(self) -> str:
        """One state per catalog target; a catalog serving several targets uses its first."""
        return self.catalog.targets[0]


def _watched_files(catalog: Catalog) -> dict[Path, float]:
    files = [catalog.path, *(arm.template for arm in catalog.arms)]
    out: dict[Path, float] = {}
    for f in files:
        try:
            out[f] = f.stat().st_mtime
        except OSError:
            out[f] = -1.0
    return out


class CatalogRegistry:
    def __init__(self, paths: Sequence[Path | str], *, seed: int | None = None) -> None:
        self.paths = [Path(p).resolve() for p in paths]
        self.seed = seed
        self._runtimes: dict[Path, CatalogRuntime] = {}
        self._mtimes: dict[Path, dict[Path, float]] = {}
        self._embedders: dict[Path, Embedder] = {}

    def load_all(self) -> None:
        """Load every catalog or raise the first CatalogError: a bad start is loud."""
        for path in self.paths:
            self._install(path, load_catalog(path))

    def runtimes(self) -> list[CatalogRuntime]:
        return list(self._runtimes.values())

    def find(self, target: str) -> CatalogRuntime | None:
        for runtime in self._runtimes.values():
            if target in runtime.catalog.targets:
                return runtime
        if any(c in target for c in "*,"):
            return None
        for runtime in self._runtimes.values():
            for pattern in runtime.catalog.targets:
                if "*" in pattern and fnmatch.fnmatchcase(target, pattern):
                    return runtime
        return None

    def _embedder(self, catalog: Catalog) -> Embedder | None:
        config = catalog.embedding
        if config is None or not any(arm.needs_vector for arm in catalog.arms):
            return None
        key = config.model.resolve()
        if key not in self._embedders:
            self._embedders[key] = Embedder(
                key, max_length=config.max_length, cache_size=config.cache_size
            )
        return self._embedders[key]

    def _install(self, path: Path, catalog: Catalog) -> None:
        old = self._runtimes.get(path)
        self._runtimes[path] = CatalogRuntime(
            catalog=catalog,
            agent=self._agent(path, catalog, old),
            entities=self._entities(catalog, old),
            embedder=self._embedder(catalog),
        )
        self._mtimes[path] = _watched_files(catalog)

    def _agent(self, path: Path, catalog: Catalog, old: CatalogRuntime | None) -> Agent:
        """The old agent when the bandit's view is unchanged, else a new one (same stream)."""
        arms = [arm.spec() for arm in catalog.arms]
        fields = [(f.name, f.kind) for f in catalog.features.context]
        buckets = catalog.features.hash_buckets
        if old is None:
            return Agent.create(catalog.policy, arms, fields, buckets, self.seed)
        agent, carried = old.agent.renew(catalog.policy, arms, fields, buckets, self.seed)
        if carried:
            log.info("catalog %s: new policy; statistics kept for arms %s", path, carried)
        return agent

    @staticmethod
    def _entities(catalog: Catalog, old: CatalogRuntime | None) -> EntityCache | None:
        field = catalog.features.entity_field
        if not field:
            return None
        if old is not None and old.entities is not None and old.entities.field == field:
            old.entities.refresh_seconds = catalog.features.entity_refresh_seconds
            old.entities.max_entries = catalog.features.entity_max
            return old.entities
        return EntityCache(
            field, catalog.features.entity_refresh_seconds, catalog.features.entity_max
        )

    def reload(self, *, only_changed: bool = False) -> list[str]:
        """Reload catalogs; a bad one keeps its old version. Returns what happened, per file."""
        report: list[str] = []
        for path in self.paths:
            old = self._runtimes.get(path)
            if (
                only_changed
                and old is not None
                and _watched_files(old.catalog) == self._mtimes.get(path)
            ):
                continue
            message = self._reload_one(path, old)
            if message is not None:
                report.append(message)
        return report

    def _reload_one(self, path: Path, old: CatalogRuntime | None) -> str | None:
        """Swap in the file's new version; on any failure keep the old one and say why."""
        try:
            catalog = load_catalog(path)
            if old is not None and old.catalog.digest == catalog.digest:
                self._mtimes[path] = _watched_files(catalog)
                return None
            self._install(path, catalog)  # builds everything before it swaps the reference
        except CatalogError as exc:
            self._mtimes[path] = _watched_files(old.catalog) if old else {}
            message = f"catalog reload failed, keeping the previous version: {exc}"
            log.error(message)
            return message
        except Exception as exc:  # an embedder that fails to load, say
            message = f"catalog reload failed, keeping the previous version: {path}: {exc}"
            log.error(message)
            return message
        message = f"catalog reloaded: {path} ({catalog.digest[:12]})"
        log.info(message)
        return message

    async def watch(self, interval: float = 2.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.reload(only_changed=True)

    def close(self) -> None:
        for embedder in self._embedders.values():
            embedder.close()
