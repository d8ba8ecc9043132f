"""The wrapper go.mod for the Kubernetes binaries, generated from k8s.io/kubernetes's own go.mod.

The fixture is a trimmed copy of k8s.io/kubernetes v1.34.4's go.mod (its replace block whole);
where Go and the real file are on this machine, the same code runs on the real file and the
result is also checked with Go's own go.mod parser (`go mod edit -json`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from finchsim.platform.controlplane.gomod import parse_gomod, staging_replaces, wrapper_gomod
from finchsim.platform.controlplane.spec import staging_version

FIXTURE = Path(__file__).parent / "fixtures" / "kubernetes-v1.34.4.go.mod"
GO = shutil.which("go") or shutil.which("/usr/local/go/bin/go")


def go_json(path: Path) -> dict[str, object]:
    assert GO is not None
    done = subprocess.run(
        [GO, "mod", "edit", "-json", str(path)], capture_output=True, text=True, check=True
    )
    parsed: dict[str, object] = json.loads(done.stdout)
    return parsed


def real_gomod() -> Path | None:
    if GO is None:
        return None
    cache = subprocess.run([GO, "env", "GOMODCACHE"], capture_output=True, text=True).stdout
    path = Path(cache.strip()) / "cache/download/k8s.io/kubernetes/@v/v1.34.4.mod"
    return path if path.is_file() else None


def test_fixture_parses_to_the_release_directives() -> None:
    upstream = parse_gomod(FIXTURE.read_text())
    assert upstream.module == "k8s.io/kubernetes"
    assert upstream.go == "1.24.0"
    assert upstream.godebug == ["default=go1.24"]
    assert len(upstream.local_replaces) == 31


def test_every_staging_module_is_replaced_by_its_published_version() -> None:
    block = staging_replaces(parse_gomod(FIXTURE.read_text()), staging_version("v1.34.4"))
    assert len(block) == 31
    assert block[0] == "k8s.io/api => k8s.io/api v0.34.4"
    assert "k8s.io/client-go => k8s.io/client-go v0.34.4" in block
    assert block[-1] == "k8s.io/sample-controller => k8s.io/sample-controller v0.34.4"
    for line in block:
        old, new = line.split(" => ")
        assert new == f"{old} v0.34.4", line
        assert f"\t{old} => ./staging/src/{old}\n" in FIXTURE.read_text()


def test_only_directory_replacements_under_staging_are_taken() -> None:
    text = """\
module example.com/m

go 1.22 // a comment

replace example.com/a => ./staging/src/example.com/a // kept
replace example.com/b v1.0.0 => example.com/b v1.1.0
replace (
    example.com/c => ../c
    example.com/d => ./staging/d
)
"""
    upstream = parse_gomod(text)
    assert upstream.go == "1.22"
    assert upstream.local_replaces == [
        ("example.com/a", "./staging/src/example.com/a"),
        ("example.com/c", "../c"),
        ("example.com/d", "./staging/d"),
    ]
    assert staging_replaces(upstream, "v0.1.2") == [
        "example.com/a => example.com/a v0.1.2",
        "example.com/d => example.com/d v0.1.2",
    ]


def test_not_a_gomod_is_refused() -> None:
    with pytest.raises(ValueError, match="no module or go directive"):
        parse_gomod("require example.com/x v1.0.0\n")


@pytest.mark.parametrize(("kube", "staging"), [("v1.34.4", "v0.34.4"), ("v1.35.0", "v0.35.0")])
def test_staging_version(kube: str, staging: str) -> None:
    assert staging_version(kube) == staging


def test_staging_version_needs_a_kubernetes_release() -> None:
    with pytest.raises(ValueError, match=r"not a Kubernetes 1\.x release"):
        staging_version("v3.6.14")


@pytest.mark.skipif(GO is None, reason="needs Go's go.mod parser")
def test_our_parser_agrees_with_go_on_the_fixture() -> None:
    ours = parse_gomod(FIXTURE.read_text())
    theirs = go_json(FIXTURE)
    assert theirs["Go"] == ours.go
    replaces = theirs["Replace"]
    assert isinstance(replaces, list)
    assert [(r["Old"]["Path"], r["New"]["Path"]) for r in replaces] == ours.local_replaces


@pytest.mark.skipif(GO is None, reason="needs Go's go.mod parser")
def test_the_generated_wrapper_is_a_valid_gomod(tmp_path: Path) -> None:
    upstream = parse_gomod(FIXTURE.read_text())
    block = staging_replaces(upstream, "v0.34.4")
    text = wrapper_gomod(
        "finchsim.local/kubernetes",
        upstream.go,
        [("k8s.io/kubernetes", "v1.34.4")],
        upstream.godebug,
        block,
    )
    (tmp_path / "go.mod").write_text(text)
    parsed = go_json(tmp_path / "go.mod")
    assert parsed["Module"] == {"Path": "finchsim.local/kubernetes"}
    assert parsed["Go"] == "1.24.0"
    assert parsed["GoDebug"] == [{"Key": "default", "Value": "go1.24"}]
    assert parsed["Require"] == [{"Path": "k8s.io/kubernetes", "Version": "v1.34.4"}]
    replaces = parsed["Replace"]
    assert isinstance(replaces, list) and len(replaces) == 31
    for entry in replaces:
        assert entry["New"] == {"Path": entry["Old"]["Path"], "Version": "v0.34.4"}


@pytest.mark.skipif(real_gomod() is None, reason="k8s.io/kubernetes v1.34.4 not in the cache")
def test_the_real_release_gomod_gives_the_same_wrapper() -> None:
    path = real_gomod()
    assert path is not None
    real, fixture = parse_gomod(path.read_text()), parse_gomod(FIXTURE.read_text())
    assert (real.go, real.godebug) == (fixture.go, fixture.godebug)
    assert staging_replaces(real, "v0.34.4") == staging_replaces(fixture, "v0.34.4")
    if GO is not None:
        replaces = go_json(path)["Replace"]
        assert isinstance(replaces, list)
        staged = [r["Old"]["Path"] for r in replaces if r["New"]["Path"].startswith("./staging/")]
        assert [line.split(" => ")[0] for line in staging_replaces(real, "v0.34.4")] == staged
