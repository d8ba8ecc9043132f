"""What the pods and ingresses refer to must exist, and the generated secrets must hold every key
the manifests and the reference workload read; `finchsim secrets` fills in what is missing."""

from __future__ import annotations

import ast
import base64
from collections.abc import Callable
from typing import Any

from finchsim.platform.manifests import Rendered
from finchsim.platform.references import reference_problems
from finchsim.platform.secrets import SECRET_FILES, ensure_secrets, read_env
from finchsim.project import Project
from tests.conftest import REPO

APP_SECRET = "cluster/secrets/app/kustomization.yaml"
FIX = "run `finchsim secrets` (or `make setup`) to generate it"


def secret(name: str, source: str, **data: str) -> Rendered:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}
    return Rendered(obj, source)


def deployment(name: str, container: dict[str, Any]) -> Rendered:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {"template": {"spec": {"containers": [{"name": name, **container}]}}},
    }
    return Rendered(obj, f"cluster/base/{name}.yaml")


ENV_FROM = {"envFrom": [{"secretRef": {"name": "finch-secrets"}}]}


def key_ref(name: str, key: str, optional: bool = False) -> dict[str, Any]:
    ref = {"name": name, "key": key, **({"optional": True} if optional else {})}
    return {"env": [{"name": "X", "valueFrom": {"secretKeyRef": ref}}]}


def test_the_real_overlays_refer_only_to_what_they_hold(project: Project) -> None:
    from finchsim.platform.manifests import build_targets, render

    for target in build_targets(project):
        assert reference_problems(render(project, target)) == [], target


def test_an_empty_generated_env_file_names_each_missing_key_once() -> None:
    objects = [
        secret("finch-secrets", APP_SECRET),
        deployment("backend", ENV_FROM),
        deployment("worker", ENV_FROM),
        deployment("postgres", key_ref("finch-secrets", "POSTGRES_PASSWORD")),
    ]
    assert [str(p) for p in reference_problems(objects)] == [
        f"cluster/secrets/app/finch.env: {key}: missing (Secret finch-secrets, read by "
        f"Deployment/backend): {FIX}"
        for key in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "DJANGO_SECRET_KEY")
    ]


def test_an_empty_value_and_a_key_finchsim_does_not_generate() -> None:
    full = {"POSTGRES_PASSWORD": "a", "REDIS_PASSWORD": "b", "DJANGO_SECRET_KEY": " "}
    objects = [
        secret("finch-secrets", APP_SECRET, **full),
        deployment("backend", ENV_FROM),
        deployment("mailer", key_ref("finch-secrets", "SMTP_PASSWORD")),
    ]
    assert [str(p) for p in reference_problems(objects)] == [
        "cluster/secrets/app/finch.env: DJANGO_SECRET_KEY: empty (Secret finch-secrets, read by "
        f"Deployment/backend): {FIX}",
        "cluster/secrets/app/finch.env: SMTP_PASSWORD: missing (Secret finch-secrets, read by "
        "Deployment/mailer); `finchsim secrets` does not make it: add it",
    ]


def test_missing_objects_and_keys_of_ordinary_secrets() -> None:
    field = "Deployment/demo/{0} spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef"
    objects = [
        secret("tls", "cluster/base/tls.yaml", cert="x"),
        deployment("a", key_ref("tsl", "cert")),
        deployment("b", key_ref("tls", "key")),
        deployment("c", key_ref("gone", "key", optional=True)),
    ]
    assert [str(p) for p in reference_problems(objects)] == [
        f"cluster/base/a.yaml: {field.format('a')}: no Secret 'tsl' in the overlay",
        f"cluster/base/b.yaml: {field.format('b')}: Secret 'tls' has no key 'key'",
    ]


def test_the_ingress_basic_auth_secret_needs_its_auth_key() -> None:
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "web",
            "annotations": {"nginx.ingress.kubernetes.io/auth-secret": "finch-basic-auth"},
        },
    }
    objects = [
        secret("finch-basic-auth", "cluster/secrets/staging-auth/kustomization.yaml", auth=""),
        Rendered(ingress, "cluster/overlays/staging/ingress-patch.yaml"),
    ]
    assert [str(p) for p in reference_problems(objects)] == [
        "cluster/secrets/staging-auth/auth.htpasswd: empty (Secret finch-basic-auth, read by "
        f"Ingress/web): {FIX}"
    ]


def test_finchsim_secrets_fills_in_missing_keys_and_keeps_the_others(
    scratch_project: Callable[[dict[str, str]], Project],
) -> None:
    proj = scratch_project({"cluster/secrets/app/finch.env": "REDIS_PASSWORD=keep-me\n"})
    done = ensure_secrets(proj)
    app = proj.cluster / "secrets" / "app" / "finch.env"
    assert done[app] == "added POSTGRES_PASSWORD, DJANGO_SECRET_KEY to"
    env = read_env(proj)
    assert env["REDIS_PASSWORD"] == "keep-me"
    assert all(len(env[k]) > 20 for k in ("POSTGRES_PASSWORD", "DJANGO_SECRET_KEY"))
    assert ensure_secrets(proj) == {}


def test_the_generated_keys_cover_what_the_reference_workload_requires() -> None:
    """env.py's variables without a default must come from the ConfigMap or the generated
    Secret; read from the workload's source, so a new required variable cannot be missed."""
    source = (REPO / "cluster/workload/backend/finchapp/env.py").read_text()
    required = {
        node.args[0].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "text"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
    }
    assert required == {"DJANGO_SECRET_KEY"}  # the check must see something
    generated = next(f for f in SECRET_FILES if f.component == "app").keys
    assert required <= set(generated)
