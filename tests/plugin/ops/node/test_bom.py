from ltrr.plugin.ops.node.bom import MODULES, OPENSEARCH_VERSION, PLUGINS, Artifact

BY_NAME = {m.name: m for m in MODULES}


def test_descriptor_is_exactly_the_keys_opensearch_accepts():
    assert BY_NAME["mapper-extras"].descriptor() == (
        "description=Adds advanced field mappers\n"
        "version=2.19.1\n"
        "name=mapper-extras\n"
        "classname=org.opensearch.index.mapper.MapperExtrasPlugin\n"
        "java.version=11\n"
        "opensearch.version=2.19.1\n"
        "custom.foldername=\n"
        "extended.plugins=\n"
        "has.native.controller=false\n"
    )


def test_analysis_common_extends_painless():
    assert "extended.plugins=lang-painless\n" in BY_NAME["analysis-common"].descriptor()


def test_policies_only_where_the_module_needs_grants():
    assert BY_NAME["mapper-extras"].policy() is None
    assert BY_NAME["analysis-common"].policy() is None
    assert BY_NAME["lang-painless"].policy() == (
        "grant {\n"
        '  permission java.lang.RuntimePermission "createClassLoader";\n'
        '  permission java.lang.RuntimePermission "getClassLoader";\n'
        "};\n"
    )
    assert "accessDeclaredMembers" in (BY_NAME["lang-mustache"].policy() or "")


def test_every_module_and_plugin_shares_the_core_version():
    for module in MODULES:
        own = [j for j in module.jars if j.group == "org.opensearch.plugin"]
        assert own, module.name
        assert all(j.version == OPENSEARCH_VERSION for j in own)
    for plugin in PLUGINS:
        assert plugin.zip.version.startswith(OPENSEARCH_VERSION + ".")


def test_artifact_names():
    zip_ = Artifact("org.opensearch.plugin", "opensearch-knn", "2.19.1.0", "zip")
    assert zip_.coords == "org.opensearch.plugin:opensearch-knn:2.19.1.0:zip"
    assert zip_.filename == "opensearch-knn-2.19.1.0.zip"


def test_plugins_install_parents_first_and_only_ltr_comes_from_the_plugin_folder():
    assert [(p.name, p.from_maven) for p in PLUGINS] == [
        ("opensearch-knn", True),
        ("opensearch-neural-search", True),  # extends opensearch-knn
        ("opensearch-ltr", False),
    ]


def test_reindex_grants_its_http_client_jars_by_codebase():
    assert BY_NAME["reindex"].policy() == (
        "grant {\n"
        '  permission java.net.SocketPermission "*", "connect";\n'
        "};\n"
        'grant codeBase "${codebase.opensearch-rest-client}" {\n'
        '  permission java.net.NetPermission "getProxySelector";\n'
        "};\n"
        'grant codeBase "${codebase.httpasyncclient}" {\n'
        '  permission java.net.NetPermission "getProxySelector";\n'
        "};\n"
    )
    # The codebase names are the jar file names without their version.
    jars = {j.artifact for j in BY_NAME["reindex"].jars}
    assert {"opensearch-rest-client", "httpasyncclient"} <= jars


def test_the_modules_every_distribution_has_are_all_there():
    assert set(BY_NAME) == {
        "lang-painless",
        "lang-mustache",
        "lang-expression",
        "mapper-extras",
        "analysis-common",
        "reindex",
        "parent-join",
        "percolator",
        "rank-eval",
        "aggs-matrix-stats",
        "ingest-common",
        "ingest-user-agent",
        "geo",
        "repository-url",
    }
    # Painless extensions need their parent: both carry a Painless whitelist.
    for name in ("analysis-common", "ingest-common"):
        assert BY_NAME[name].extended_plugins == ("lang-painless",)
    # Module folders must never repeat a jar of lib/: one copy of each class.
    for module in MODULES:
        assert not any(
            j.artifact in {"opensearch", "opensearch-core", "lucene-core"} for j in module.jars
        )
