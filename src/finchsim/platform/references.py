"""What the pods and ingresses refer to must be in the overlay: every Secret and ConfigMap key a
container's environment names, and every key the generated secrets must hold.

None of this is a schema error. On Kubernetes such a pod never starts
(CreateContainerConfigError: couldn't find key ... in Secret ...) and the local platform would
start it without the variable, so it would never get ready; both are caught here, offline. A
key missing from a generated secret (`cluster/secrets/`) is reported against the generated file,
with what to run to fill it in."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from finchsim.errors import Problem
from finchsim.platform.manifests import Rendered
from finchsim.platform.secrets import SECRET_FILES, SecretFile

AUTH_SECRET = "nginx.ingress.kubernetes.io/auth-secret"  # ingress-nginx reads its `auth` key
_POD_TEMPLATES = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
FIX = "run `finchsim secrets` (or `make setup`) to generate it"


@dataclass(frozen=True)
class _Source:
    """A ConfigMap or Secret of the overlay: which keys hold a value, and where it came from."""

    kind: str
    keys: dict[str, bool]  # key -> has a non-empty value
    generated: tuple[str, SecretFile] | None  # (file shown to the user, its spec)


def reference_problems(objects: list[Rendered]) -> list[Problem]:
    """One Problem per missing object or key; a generated key once, naming its first reader."""
    sources = {(o.kind, o.name): _source(o) for o in objects if o.kind in ("ConfigMap", "Secret")}
    found: dict[tuple[str, ...], Problem] = {}
    for item in objects:
        for field, kind, name, keys in _references(item):
            src = sources.get((kind, name))
            if src is None:
                problem = Problem(item.source, field, f"no {kind} {name!r} in the overlay")
                found.setdefault((str(problem),), problem)
                continue
            if keys is None:  # envFrom: what the reference workload reads from a generated one
                keys = src.generated[1].keys if src.generated is not None else ()
            for key in keys:
                if src.keys.get(key):
                    continue
                if src.generated is None:
                    problem = Problem(item.source, field, f"{kind} {name!r} has no key {key!r}")
                    found.setdefault((str(problem),), problem)
                else:
                    found.setdefault((src.generated[0], key), _generated(item, src, name, key))
    return list(found.values())


def _generated(item: Rendered, src: _Source, name: str, key: str) -> Problem:
    assert src.generated is not None
    shown, spec = src.generated
    what = "missing" if key not in src.keys else "empty"
    read = f"Secret {name}, read by {item.kind}/{item.name}"
    if spec.keys and key not in spec.keys:
        return Problem(shown, key, f"{what} ({read}); `finchsim secrets` does not make it: add it")
    return Problem(shown, key if spec.keys else "", f"{what} ({read}): {FIX}")


def _source(item: Rendered) -> _Source:
    data = {k: str(v) for k, v in (item.obj.get("data") or {}).items()}
    if item.kind == "Secret":
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
    data.update({k: str(v) for k, v in (item.obj.get("stringData") or {}).items()})
    generated = next(
        (
            (f"cluster/secrets/{spec.component}/{spec.name}", spec)
            for spec in SECRET_FILES
            if item.kind == "Secret"
            and item.source == f"cluster/secrets/{spec.component}/kustomization.yaml"
        ),
        None,
    )
    return _Source(item.kind, {k: bool(v.strip()) for k, v in data.items()}, generated)


def _references(item: Rendered) -> Iterator[tuple[str, str, str, tuple[str, ...] | None]]:
    """(field, kind, name, keys needed) for every reference the object makes; None for the keys
    of an envFrom reference."""
    ref = item.ref
    if item.kind == "Ingress":
        secret = (item.obj.get("metadata", {}).get("annotations") or {}).get(AUTH_SECRET)
        if secret:
            yield f"{ref} metadata.annotations.{AUTH_SECRET}", "Secret", secret, ("auth",)
        return
    path = _POD_TEMPLATES.get(item.kind)
    pod: Any = item.obj
    for part in path or ():
        pod = pod.get(part) if isinstance(pod, dict) else None
    if path is None or not isinstance(pod, dict):
        return
    where = ".".join(path)
    for group in ("initContainers", "containers"):
        for i, container in enumerate(pod.get(group) or []):
            at = f"{ref} {where}.{group}[{i}]"
            for j, var in enumerate(container.get("env") or []):
                value_from = var.get("valueFrom") or {}
                for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                    sel = value_from.get(key)
                    if sel and not sel.get("optional"):
                        field = f"{at}.env[{j}].valueFrom.{key}"
                        yield field, kind, sel.get("name", ""), (sel.get("key", ""),)
            for j, source in enumerate(container.get("envFrom") or []):
                for key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                    sel = source.get(key)
                    if sel and not sel.get("optional"):
                        yield f"{at}.envFrom[{j}].{key}", kind, sel.get("name", ""), None
