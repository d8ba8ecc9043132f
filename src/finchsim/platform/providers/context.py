"""The `context` provider: an existing cluster, reached by a kubeconfig context.

finch-sim never creates or deletes such a cluster. It creates the overlay's namespaces itself,
labelled as its own, and `down` deletes only those. A namespace that already exists without
that label belongs to someone else: `up` refuses to touch it unless asked (`--adopt`), and an
adopted namespace is left in place at `down`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes.client import V1Namespace, V1ObjectMeta, VersionApi
from kubernetes.client.exceptions import ApiException

from finchsim.errors import PlatformError
from finchsim.platform.kubernetes.client import Clients, api_message
from finchsim.platform.kubernetes.provider import Provider

OWNER_LABEL = "app.kubernetes.io/managed-by"
OWNER = "finchsim"
# A namespace deleted by the previous run may still be finalizing its contents; nothing can be
# created in it until it is gone.
TERMINATING_WAIT_S = 180.0


class ContextProvider(Provider):
    name = "context"
    with_monitoring = True

    def __init__(self, kubeconfig: Path, context: str | None, adopt: bool = False) -> None:
        self.kubeconfig_path = kubeconfig
        self.context_name = context
        self.adopt = adopt
        self.created: list[str] = []
        self.log: Callable[[str], None] = lambda _line: None

    def create(self, run_dir: Path, log: Callable[[str], None]) -> Path:
        self.log = log
        if not self.kubeconfig_path.is_file():
            raise PlatformError(f"no kubeconfig at {self.kubeconfig_path}")
        clients = Clients.connect(self.kubeconfig_path, run_dir / "probe.json", self.context_name)
        try:
            version = VersionApi(clients.api).get_code().git_version
        except Exception as exc:  # any failure to reach the server: say which context
            raise PlatformError(
                f"cannot reach the cluster of context {self.context_name or '(current)'} in "
                f"{self.kubeconfig_path}: {exc}"
            ) from exc
        finally:
            clients.close()
        log(f"using context {self.context_name or '(current)'}: Kubernetes {version}")
        return self.kubeconfig_path

    def context(self) -> str | None:
        return self.context_name

    def prepare(self, clients: Clients, namespaces: list[str]) -> None:
        for ns in namespaces:
            existing = _read_after_termination(clients, ns, self.log)
            if existing is None:
                clients.core.create_namespace(
                    V1Namespace(metadata=V1ObjectMeta(name=ns, labels={OWNER_LABEL: OWNER})),
                    field_manager="finchsim-owner",
                )
                self.created.append(ns)
                continue
            ours = (existing.metadata.labels or {}).get(OWNER_LABEL) == OWNER
            if not ours and not self.adopt:
                raise PlatformError(
                    f"namespace {ns} already exists and finch-sim did not create it: refusing "
                    "to touch it (pass --adopt to use it anyway; it is then never deleted)"
                )

    def delete(self, clients: Clients | None) -> None:
        if clients is None:
            return
        for ns in self.created:
            try:
                clients.core.delete_namespace(ns)
            except ApiException as exc:
                if exc.status != 404:
                    raise PlatformError(f"deleting namespace {ns}: {api_message(exc)}") from exc
        self.created = []

    def state(self) -> dict[str, Any]:
        return {
            "kubeconfig": str(self.kubeconfig_path),
            "context": self.context_name,
            "created": list(self.created),
        }


def _read_after_termination(
    clients: Clients, ns: str, log: Callable[[str], None]
) -> V1Namespace | None:
    """The namespace, or None when it does not exist — once any deletion under way has ended."""
    deadline = time.monotonic() + TERMINATING_WAIT_S
    said = False
    while True:
        try:
            existing: V1Namespace = clients.core.read_namespace(ns)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise PlatformError(f"namespace {ns}: {api_message(exc)}") from exc
        if existing.status is None or existing.status.phase != "Terminating":
            return existing
        if not said:
            log(f"waiting for namespace {ns} to finish terminating")
            said = True
        if time.monotonic() > deadline:
            raise PlatformError(
                f"namespace {ns} has been terminating for over {TERMINATING_WAIT_S:.0f} s; "
                "something in it holds a finalizer (kubectl get all -n " + ns + ")"
            )
        time.sleep(0.5)


def cleanup(state: dict[str, Any], run_dir: Path) -> None:
    """After a crash: delete the namespaces the crashed run created (never the cluster)."""
    provider = ContextProvider(Path(state["kubeconfig"]), state.get("context"))
    provider.created = list(state.get("created") or [])
    run_dir.mkdir(parents=True, exist_ok=True)
    clients = Clients.connect(
        provider.kubeconfig_path, run_dir / "discovery.json", provider.context_name
    )
    try:
        provider.delete(clients)
    finally:
        clients.close()
