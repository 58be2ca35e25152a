"""The bill of materials of the local node: every artifact, pinned, and how it becomes a module.

OpenSearch publishes its minimal distribution (the integ-test zip) and its modules as plain jars
on Maven Central, not as a ready-made bundle. Each module folder is therefore assembled here:
the module jar, its private dependencies, a descriptor and, where the module asks for it, a
security policy. Versions are pinned rather than resolved, so two machines get the same node.
"""

from __future__ import annotations

from dataclasses import dataclass

from ltrr.plugin.cluster import KNN_PLUGIN, LTR_PLUGIN

OPENSEARCH_VERSION = "2.19.1"
PLUGIN_VERSION = f"{OPENSEARCH_VERSION}.0"
# 2.19 needs the SecurityManager (gone in Java 24) and was built for Java 11.
JAVA_MIN, JAVA_MAX = 11, 21


@dataclass(frozen=True)
class Artifact:
    """One Maven coordinate."""

    group: str
    artifact: str
    version: str
    packaging: str = "jar"

    @property
    def coords(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}:{self.packaging}"

    @property
    def filename(self) -> str:
        return f"{self.artifact}-{self.version}.{self.packaging}"


@dataclass(frozen=True)
class Module:
    """A core module that the integ-test zip leaves out, rebuilt from its published jars."""

    name: str
    description: str
    classname: str
    jars: tuple[Artifact, ...]
    extended_plugins: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()

    def descriptor(self) -> str:
        """The ``plugin-descriptor.properties`` text; any extra key would abort startup."""
        lines = {
            "description": self.description,
            "version": OPENSEARCH_VERSION,
            "name": self.name,
            "classname": self.classname,
            "java.version": str(JAVA_MIN),
            "opensearch.version": OPENSEARCH_VERSION,
            "custom.foldername": "",
            "extended.plugins": ",".join(self.extended_plugins),
            "has.native.controller": "false",
        }
        return "".join(f"{key}={value}\n" for key, value in lines.items())

    def policy(self) -> str | None:
        """The ``plugin-security.policy`` text, or None when the module needs no grants."""
        if not self.permissions:
            return None
        grants = "".join(f"  permission {perm};\n" for perm in self.permissions)
        return f"grant {{\n{grants}}};\n"


@dataclass(frozen=True)
class Plugin:
    """A plugin zip installed with ``opensearch-plugin install``."""

    name: str
    zip: Artifact
    required: bool


def _os(artifact: str, group: str = "org.opensearch.plugin") -> Artifact:
    return Artifact(group, artifact, OPENSEARCH_VERSION)


DISTRIBUTION = Artifact(
    "org.opensearch.distribution.integ-test-zip", "opensearch", OPENSEARCH_VERSION, "zip"
)

_ASM = tuple(
    Artifact("org.ow2.asm", name, "9.7")
    for name in ("asm", "asm-util", "asm-tree", "asm-commons", "asm-analysis")
)

MODULES: tuple[Module, ...] = (
    Module(
        name="lang-painless",
        description="An easy, safe and fast scripting language for OpenSearch",
        classname="org.opensearch.painless.PainlessPlugin",
        jars=(
            _os("lang-painless"),
            _os("opensearch-scripting-painless-spi"),
            Artifact("org.antlr", "antlr4-runtime", "4.13.1"),
            *_ASM,
        ),
        permissions=(
            'java.lang.RuntimePermission "createClassLoader"',
            'java.lang.RuntimePermission "getClassLoader"',
        ),
    ),
    Module(
        name="lang-mustache",
        description="Mustache scripting integration for OpenSearch",
        classname="org.opensearch.script.mustache.MustachePlugin",
        jars=(
            _os("lang-mustache-client"),
            Artifact("com.github.spullara.mustache.java", "compiler", "0.9.14"),
        ),
        permissions=('java.lang.RuntimePermission "accessDeclaredMembers"',),
    ),
    Module(
        name="mapper-extras",
        description="Adds advanced field mappers",
        classname="org.opensearch.index.mapper.MapperExtrasPlugin",
        jars=(_os("mapper-extras-client"),),
    ),
    Module(
        name="analysis-common",
        description='Adds "built in" analyzers to OpenSearch.',
        classname="org.opensearch.analysis.common.CommonAnalysisPlugin",
        jars=(_os("analysis-common"),),
        # Its jar ships a Painless whitelist, so lang-painless is a hard parent.
        extended_plugins=("lang-painless",),
    ),
)

PLUGINS: tuple[Plugin, ...] = (
    Plugin(KNN_PLUGIN, Artifact("org.opensearch.plugin", KNN_PLUGIN, PLUGIN_VERSION, "zip"), True),
    # Not on Maven Central for 2.19 (nor 3.x) when this was written: optional, reported cleanly.
    Plugin(LTR_PLUGIN, Artifact("org.opensearch", LTR_PLUGIN, PLUGIN_VERSION, "zip"), False),
)
