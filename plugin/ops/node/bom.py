"""The bill of materials of the local node: every artifact, pinned, and how it becomes a module.

OpenSearch publishes its minimal distribution (the integ-test zip) and its modules as plain jars
on Maven Central, not as a ready-made bundle. Each module folder is therefore assembled here:
the module jar, its private dependencies, a descriptor and, where the module asks for it, a
security policy. Versions are pinned rather than resolved, so two machines get the same node.
"""

from __future__ import annotations

from dataclasses import dataclass

from ltrr.plugin.ops.cluster import KNN_PLUGIN, LTR_PLUGIN, NEURAL_PLUGIN, SECURITY_PLUGIN

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
    # Grants to one bundled jar only, as (jar name without version, permission).
    codebase_permissions: tuple[tuple[str, str], ...] = ()

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
        if not self.permissions and not self.codebase_permissions:
            return None
        blocks = []
        if self.permissions:
            grants = "".join(f"  permission {perm};\n" for perm in self.permissions)
            blocks.append(f"grant {{\n{grants}}};\n")
        for codebase, perm in self.codebase_permissions:
            blocks.append(
                f'grant codeBase "${{codebase.{codebase}}}" {{\n  permission {perm};\n}};\n'
            )
        return "".join(blocks)


@dataclass(frozen=True)
class Plugin:
    """A plugin zip installed with ``opensearch-plugin install``, in this order.

    ``from_maven`` plugins are fetched with the rest; the others are not on Maven Central and
    are looked up, by file name, in the plugin folder the user names (``LTRR_PLUGIN_DIR``).
    """

    name: str
    zip: Artifact
    from_maven: bool
    # Digests of builds known to be good; another zip needs its ``.sha256`` file beside it.
    known_sha256: tuple[str, ...] = ()


def _os(artifact: str, group: str = "org.opensearch.plugin") -> Artifact:
    return Artifact(group, artifact, OPENSEARCH_VERSION)


DISTRIBUTION = Artifact(
    "org.opensearch.distribution.integ-test-zip", "opensearch", OPENSEARCH_VERSION, "zip"
)

_ASM = tuple(
    Artifact("org.ow2.asm", name, "9.7")
    for name in ("asm", "asm-util", "asm-tree", "asm-commons", "asm-analysis")
)
_ANTLR = Artifact("org.antlr", "antlr4-runtime", "4.13.1")
_CONNECT = 'java.net.SocketPermission "*", "connect"'
_PROXY_SELECTOR = 'java.net.NetPermission "getProxySelector"'
# Classes an expression script may touch (lang-expression's own policy, 2.19).
_EXPRESSION_CLASSES = (
    "java.lang.String",
    "org.apache.lucene.expressions.Expression",
    "org.apache.lucene.search.DoubleValues",
    "java.lang.Math",
    "org.apache.lucene.util.MathUtil",
    "org.apache.lucene.util.SloppyMath",
    "org.apache.lucene.expressions.js.ExpressionMath",
)

MODULES: tuple[Module, ...] = (
    Module(
        name="lang-painless",
        description="An easy, safe and fast scripting language for OpenSearch",
        classname="org.opensearch.painless.PainlessPlugin",
        jars=(
            _os("lang-painless"),
            _os("opensearch-scripting-painless-spi"),
            _ANTLR,
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
    # The modules every OpenSearch user has (the official distribution ships them): a
    # client's own server tests must see this node as they see that one.
    Module(
        name="reindex",
        description="The Reindex module adds APIs to reindex from one index to another or update"
        " documents in place.",
        classname="org.opensearch.index.reindex.ReindexPlugin",
        jars=(
            _os("reindex-client"),
            Artifact("org.opensearch.client", "opensearch-rest-client", OPENSEARCH_VERSION),
            Artifact("org.opensearch", "opensearch-ssl-config", OPENSEARCH_VERSION),
            Artifact("org.apache.httpcomponents", "httpclient", "4.5.14"),
            Artifact("org.apache.httpcomponents", "httpcore", "4.4.16"),
            Artifact("org.apache.httpcomponents", "httpasyncclient", "4.1.5"),
            Artifact("org.apache.httpcomponents", "httpcore-nio", "4.4.16"),
            Artifact("commons-codec", "commons-codec", "1.16.1"),
            Artifact("commons-logging", "commons-logging", "1.2"),
        ),
        permissions=(_CONNECT,),  # reindex from a remote cluster
        codebase_permissions=(
            ("opensearch-rest-client", _PROXY_SELECTOR),
            ("httpasyncclient", _PROXY_SELECTOR),
        ),
    ),
    Module(
        name="parent-join",
        description="This module adds the support parent-child queries and aggregations",
        classname="org.opensearch.join.ParentJoinPlugin",
        jars=(_os("parent-join-client"),),
    ),
    Module(
        name="percolator",
        description="Percolator module adds capability to index queries and query these queries"
        " by specifying documents",
        classname="org.opensearch.percolator.PercolatorPlugin",
        jars=(_os("percolator-client"),),
    ),
    Module(
        name="rank-eval",
        description="The Rank Eval module adds APIs to evaluate ranking quality.",
        classname="org.opensearch.index.rankeval.RankEvalPlugin",
        jars=(_os("rank-eval-client"),),
    ),
    Module(
        name="aggs-matrix-stats",
        description="Adds aggregations whose input are a list of numeric fields and output"
        " includes a matrix.",
        classname="org.opensearch.search.aggregations.matrix.MatrixAggregationPlugin",
        jars=(_os("aggs-matrix-stats-client"),),
    ),
    Module(
        name="lang-expression",
        description="Lucene expressions integration for OpenSearch",
        classname="org.opensearch.script.expression.ExpressionPlugin",
        jars=(
            _os("lang-expression"),
            Artifact("org.apache.lucene", "lucene-expressions", "9.12.1"),
            _ANTLR,
            *(a for a in _ASM if a.artifact in ("asm", "asm-commons", "asm-tree")),
        ),
        permissions=(
            'java.lang.RuntimePermission "createClassLoader"',
            *(f'org.opensearch.script.ClassPermission "{c}"' for c in _EXPRESSION_CLASSES),
        ),
    ),
    Module(
        name="ingest-common",
        description="Module for ingest processors that do not require additional security"
        " permissions or have large dependencies and resources",
        classname="org.opensearch.ingest.common.IngestCommonPlugin",
        jars=(
            _os("ingest-common"),
            Artifact("org.opensearch", "opensearch-grok", OPENSEARCH_VERSION),
            Artifact("org.opensearch", "opensearch-dissect", OPENSEARCH_VERSION),
            Artifact("org.jruby.joni", "joni", "2.2.1"),
            Artifact("org.jruby.jcodings", "jcodings", "1.0.61"),
        ),
        # Its jar registers a Painless extension (the processors' script helpers).
        extended_plugins=("lang-painless",),
    ),
    Module(
        name="ingest-user-agent",
        description="Ingest processor that extracts information from a user agent",
        classname="org.opensearch.ingest.useragent.IngestUserAgentPlugin",
        jars=(_os("ingest-user-agent"),),
    ),
    Module(
        name="geo",
        description="Plugin for geospatial features in OpenSearch. Registering the geo_shape and"
        " aggregations on GeoShape and GeoPoint",
        classname="org.opensearch.geo.GeoModulePlugin",
        jars=(_os("geo"),),
    ),
    Module(
        name="repository-url",
        description="Module for URL repository",
        classname="org.opensearch.plugin.repository.url.URLRepositoryPlugin",
        jars=(_os("repository-url"),),
        permissions=(_CONNECT,),
    ),
)

PLUGINS: tuple[Plugin, ...] = (
    Plugin(KNN_PLUGIN, Artifact("org.opensearch.plugin", KNN_PLUGIN, PLUGIN_VERSION, "zip"), True),
    # OpenSearch's own hybrid query and its normalization / RRF pipelines; extends k-NN.
    Plugin(
        NEURAL_PLUGIN,
        Artifact("org.opensearch.plugin", "neural-search", PLUGIN_VERSION, "zip"),
        True,
    ),
    # Not on Maven Central (neither 2.19 nor 3.x): the zip comes from the plugin folder. The
    # digest is the build from upstream tag 2.19.1.0 that ../shared/plugins holds.
    Plugin(
        LTR_PLUGIN,
        Artifact("org.opensearch", LTR_PLUGIN, PLUGIN_VERSION, "zip"),
        False,
        ("8abf31710227c2a2ef1484da15137e85d8b4959dc9de567ef6757fe54eaa2ae3",),
    ),
)

# The secured node (``NodeConfig(security=True)``) installs only this: TLS, users and roles,
# so that the proxy is tested against OpenSearch's own access control. It extends no other
# plugin (job-scheduler is not needed) and the searches tested there need no k-NN or LTR.
SECURITY = Plugin(
    SECURITY_PLUGIN,
    Artifact("org.opensearch.plugin", SECURITY_PLUGIN, PLUGIN_VERSION, "zip"),
    True,
)
SECURED_PLUGINS: tuple[Plugin, ...] = (SECURITY,)
