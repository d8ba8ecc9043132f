"""`--platform context`: an existing cluster, reached by its kubeconfig, never created or deleted.

"Someone's cluster" here is a real control plane with KWOK nodes, brought up in this process
(its provider also runs the cluster's volume provisioner, as a cloud's CSI driver would). The
CLI then uses it by kubeconfig: it creates and labels the overlay's namespaces, deletes only
those at the end, refuses a namespace it did not create unless `--adopt`, and leaves the
cluster running."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from finchsim.platform.base import Platform
from finchsim.platform.kubernetes.client import Clients
from finchsim.platform.providers.context import OWNER, OWNER_LABEL
from finchsim.project import Project
from tests.conftest import REPO, run_cli
from tests.platform.conftest import bring_up

pytestmark = pytest.mark.kwok


@pytest.fixture(scope="module")
def cluster(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A running cluster whose provisioner keeps working while the tests use it."""
    platform = bring_up("kwok", project, tmp_path_factory.mktemp("cluster"), [])
    stop = threading.Event()

    def keep_polling() -> None:
        while not stop.wait(0.5):
            platform.poll()

    poller = threading.Thread(target=keep_polling, daemon=True)
    poller.start()
    try:
        yield platform
    finally:
        stop.set()
        poller.join(10)
        platform.down()


def namespace_labels(api: Clients, name: str) -> dict[str, str] | None:
    found = [n for n in api.core.list_namespace().items if n.metadata.name == name]
    if not found or found[0].status.phase == "Terminating":
        return None
    return dict(found[0].metadata.labels or {})


def namespace_gone(api: Clients, name: str) -> bool:
    return all(n.metadata.name != name for n in api.core.list_namespace().items)


def up_then_interrupt(
    start_cli: Callable[..., subprocess.Popen[str]],
    project: Project,
    *args: str,
    while_up: Callable[[], None] = lambda: None,
) -> None:
    """`finchsim up --platform context ARGS` until ready, `while_up()`, Ctrl-C: exit 130."""
    proc = start_cli("--project", str(project.root), "up", "--platform", "context", *args)
    assert proc.stdout is not None
    ready = next((line for line in proc.stdout if line.startswith("ready in")), None)
    assert ready is not None, proc.communicate(timeout=60)
    while_up()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err


def test_up_creates_its_namespaces_and_down_deletes_only_those(
    cluster: Platform,
    project_copy: Project,
    tmp_path: Path,
    start_cli: Callable[..., subprocess.Popen[str]],
) -> None:
    kubeconfig = str(cluster.kubeconfig())
    api = Clients.connect(cluster.kubeconfig(), tmp_path / "discovery.json")

    def labelled() -> None:
        assert (namespace_labels(api, "finch-staging") or {}).get(OWNER_LABEL) == OWNER
        assert namespace_labels(api, "finch-monitoring") is not None

    up_then_interrupt(
        start_cli,
        project_copy,
        "--kubeconfig",
        kubeconfig,
        "--overlay",
        "staging",
        while_up=labelled,
    )
    for ns in ("finch-staging", "finch-monitoring"):
        cluster.wait_for(lambda ns=ns: namespace_gone(api, ns), 120, f"{ns} deleted")
    # The cluster and what finch-sim did not create are untouched.
    assert namespace_labels(api, "finch-production") is not None
    assert all(n.ready for n in cluster.nodes())
    api.close()


def test_up_waits_for_a_namespace_still_terminating(
    cluster: Platform,
    project_copy: Project,
    tmp_path: Path,
    start_cli: Callable[..., subprocess.Popen[str]],
) -> None:
    """A namespace the previous run deleted may still be finalizing: `up` waits, then creates."""
    api = Clients.connect(cluster.kubeconfig(), tmp_path / "discovery.json")
    ns = "finch-staging"
    held = {"metadata": {"name": "held", "finalizers": ["finchsim.io/test-hold"]}}
    api.core.create_namespace({"metadata": {"name": ns, "labels": {OWNER_LABEL: OWNER}}})
    api.core.create_namespaced_config_map(ns, held)
    api.core.delete_namespace(ns)
    proc = start_cli(
        "--project", str(project_copy.root), "up", "--platform", "context",
        "--kubeconfig", str(cluster.kubeconfig()), "--overlay", "staging",
    )  # fmt: skip
    assert proc.stderr is not None and proc.stdout is not None
    said = []
    for line in proc.stderr:
        said.append(line)
        if "waiting for namespace" in line:
            break
    assert said[-1:] == [f"waiting for namespace {ns} to finish terminating\n"], said
    api.core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})
    ready = next((line for line in proc.stdout if line.startswith("ready in")), None)
    assert ready is not None, proc.communicate(timeout=60)
    assert (namespace_labels(api, ns) or {}).get(OWNER_LABEL) == OWNER
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    for gone in (ns, "finch-monitoring"):
        cluster.wait_for(lambda n=gone: namespace_gone(api, n), 120, f"{gone} deleted")
    api.close()


def test_a_namespace_finchsim_did_not_create_is_refused_unless_adopted(
    cluster: Platform, project_copy: Project
) -> None:
    kubeconfig = str(cluster.kubeconfig())
    refused = run_cli(
        "--project",
        str(project_copy.root),
        "up",
        "--platform",
        "context",
        "--kubeconfig",
        kubeconfig,
    )
    assert refused.returncode == 5, refused.stderr
    assert (
        "error: namespace finch-production already exists and finch-sim did not create "
        "it: refusing to touch it (pass --adopt to use it anyway; it is then never "
        "deleted)"
    ) in refused.stderr
    bad = run_cli(
        "--project",
        str(project_copy.root),
        "up",
        "--platform",
        "context",
        "--kubeconfig",
        str(REPO / "no-such-kubeconfig"),
    )
    assert bad.returncode == 5 and "no kubeconfig at" in bad.stderr, bad.stderr


def test_an_adopted_namespace_is_used_and_never_deleted(
    cluster: Platform, project_copy: Project, start_cli: Callable[..., subprocess.Popen[str]]
) -> None:
    up_then_interrupt(start_cli, project_copy, "--kubeconfig", str(cluster.kubeconfig()), "--adopt")
    assert {c.name for c in cluster.components()} >= {"finch-backend", "finch-postgres"}
    assert all(c.ready == c.desired for c in cluster.components())
