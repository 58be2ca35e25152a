import pytest

from ltrr.plugin.errors import JavaNotFound
from ltrr.plugin.ops.node import java


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "25.0.1" 2025-10-21', 25),
        ("command not found", None),
    ],
)
def test_parse_major(output, major):
    assert java.parse_major(output) == major


def fake_jdk(root, version):
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "java"
    script.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2025-01-01' >&2\n")
    script.chmod(0o755)
    return root


def test_skips_runtimes_this_opensearch_cannot_use(monkeypatch, tmp_path):
    too_new = fake_jdk(tmp_path / "jdk25", "25.0.1")
    fits = fake_jdk(tmp_path / "jdk17", "17.0.2")
    monkeypatch.setattr(java, "candidates", lambda: iter([tmp_path / "nothing", too_new, fits]))
    assert java.find_java_home() == fits


def test_says_what_it_found_when_nothing_fits(monkeypatch, tmp_path):
    too_new = fake_jdk(tmp_path / "jdk25", "25.0.1")
    monkeypatch.setattr(java, "candidates", lambda: iter([too_new]))
    with pytest.raises(JavaNotFound, match=r"needs Java 11 to 21; found: .*jdk25 \(Java 25\)"):
        java.find_java_home()


def test_explicit_choice_comes_first(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENSEARCH_JAVA_HOME", str(tmp_path / "mine"))
    assert next(iter(java.candidates())) == tmp_path / "mine"
