"""Every overlay's Ingresses render to one nginx server per host that nginx itself accepts
(`nginx -t`), with finch-api-metrics-deny's /metrics merged into the API host's server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from finchsim.platform.local.ingress import (
    ControllerSettings,
    plan_servers,
    render_config,
    upstream_name,
)
from finchsim.platform.manifests import render
from finchsim.platform.topology import build_topology
from finchsim.project import Project

API_HOSTS = {"production": "api.finch.example.com", "staging": "api.staging.finch.example.com"}


@pytest.mark.parametrize("overlay", ["production", "staging", "recommended"])
def test_overlay_ingress_renders_and_nginx_accepts_it(
    project: Project, overlay: str, tmp_path: Path
) -> None:
    topo = build_topology(render(project, overlay))
    auth = {"finch-basic-auth": str(tmp_path / "htpasswd")}
    (tmp_path / "htpasswd").write_text("u:$apr1$x$y\n")
    servers, limits = plan_servers(list(topo.ingresses.values()), auth, topo.namespace)
    hosts = [s.host for s in servers]
    assert len(hosts) == len(set(hosts)), hosts
    api = next(s for s in servers if s.host == API_HOSTS.get(overlay, "api.finch.example.com"))
    paths = {loc.path: loc for loc in api.locations}
    print(overlay, {p: (loc.ingress, loc.source_range) for p, loc in paths.items()})
    assert paths["/metrics"].ingress == "finch-api-metrics-deny"
    assert paths["/metrics"].source_range == ("127.0.0.1/32",)
    assert api.tls  # from finch-api: one server per host holds both Ingresses' paths

    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    keys = ["-keyout", str(tmp_path / "k"), "-out", str(tmp_path / "c")]
    subprocess.run([*openssl, "-subj", "/CN=t", *keys], check=True, capture_output=True)
    upstreams = {
        upstream_name(r.service, r.port): [("127.0.0.1", 1)]
        for ing in topo.ingresses.values()
        for r in ing.rules
    }
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        render_config(
            servers=servers,
            rate_limits=limits,
            upstreams=upstreams,
            settings=ControllerSettings.from_configmap(
                topo.config.get("ingress-nginx-controller", {})
            ),
            http_port=1,
            https_port=2,
            run_dir=tmp_path,
            cert=tmp_path / "c",
            key=tmp_path / "k",
        )
    )
    check = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    print(check.stderr)
    assert check.returncode == 0, check.stderr
    assert "conflicting server name" not in check.stderr
