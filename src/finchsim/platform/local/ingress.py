"""The local platform's ingress: plain nginx configured the way ingress-nginx would be.

From the Ingress objects and the controller ConfigMap it renders what ingress-nginx renders for
the features Finch uses. Sources read in kubernetes/ingress-nginx with the code search; its
stored copies are not tied to the `controller-v1.15.1` tag (none is stored at that release's
changelog commit c70804f, and the Go module proxy does not serve the tag), so each item names the
copy read: "store #<id>" is the search index's file id, a commit is the one it reported.
- `internal/ingress/annotations/ratelimit/main.go` (store #1591863317, the `limit-allowlist`
  era): `defBurst = 5` (l. 35), `defSharedSize = 5` (l. 39, megabytes per zone), `limit-whitelist`
  an alias of `limit-allowlist` (l. 142-143); `Parse` makes the zones `<ns>_<ingress>_<uid>` +
  `_conn`, `_rps`, `_rpm`, each with `Burst = limit x limit-burst-multiplier`, so `limit-rps` and
  `limit-rpm` together give two zones and two `limit_req` lines;
- `internal/ingress/controller/template/template.go` (store #333789827): `buildRateLimitZones`
  renders `limit_conn_zone $limit_<id> zone=<name>_conn:<size>m;` and `limit_req_zone
  $limit_<id> zone=<name>_rpm:<size>m rate=<n>r/m;` (`_rps ... r/s`); `buildRateLimit` renders,
  in this order, `limit_conn <zone> <n>;`, `limit_req zone=<rps> burst=<b> nodelay;`, then rpm;
- `rootfs/etc/nginx/template/nginx.tmpl` (store #11209626400): per rate limit `geo $remote_addr
  $whitelist_<id> { default 0; <cidr> 1; }` and `map $whitelist_<id> $limit_<id> { 0
  $binary_remote_addr; 1 ""; }` (an empty key is never limited: that is how the allowlist
  exempts; newer copies may spell it `allowlist`); `whitelist-source-range` as `allow <cidr>;
  ... deny all;` in the location (403). Commit f3e609a: with `use-forwarded-headers`,
  `real_ip_header <forwarded-for-header>; real_ip_recursive on;` and one `set_real_ip_from` per
  `proxy-real-ip-cidr` (default `0.0.0.0/0`, config.go `defIPCIDR`): every hop is trusted, so the
  client is the *leftmost* X-Forwarded-For address; `limit_req_status` and `limit_conn_status`
  from `limit-req-status-code` / `limit-conn-status-code` (503 when unset, nginx's default too);
- `internal/ingress/controller/controller.go` (store #11053103472): one server per host; each
  Ingress adds its paths as locations with its own annotations (`locationApplyAnnotations`); a
  path the host already has is kept ("Location %q already configured for server %q"). The order
  ingress-nginx takes Ingresses in was not re-checked: here, manifest order.

Also (not re-checked against that source): `ssl-redirect` (308 to https) where the host has TLS,
`force-ssl-redirect` anywhere; HSTS on https responses; CORS; `auth-type: basic`. Each upstream
holds a Service port's *ready* endpoints as (ip, port) (none: 503, like ingress-nginx's default
backend): today's platform passes its 127.0.0.1:<host port> ones (`endpoint_pairs`), a platform
with pod IPs the ready endpoints of `finchsim.platform.network` (`upstreams_from_endpoints`).
Load balancing is round robin (ingress-nginx's default; its `ewma` is not emulated).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from finchsim.platform.network.endpoints import Endpoints, as_dict
from finchsim.platform.topology import Ingress

PREFIX = "nginx.ingress.kubernetes.io/"
# nginx started as root runs its workers as `nobody` (its compiled-in default user): files
# they read at request time (htpasswd) must be theirs.
NGINX_WORKER_USER = "nobody"
DEFAULT_BURST_MULTIPLIER = 5  # ratelimit/main.go defBurst
ZONE_SIZE_MB = 5  # ratelimit/main.go defSharedSize
DEFAULT_LIMIT_STATUS = 503


@dataclass(frozen=True)
class ControllerSettings:
    """The ingress-nginx controller ConfigMap keys the emulation honours, with their defaults."""

    limit_req_status_code: int = DEFAULT_LIMIT_STATUS
    limit_conn_status_code: int = DEFAULT_LIMIT_STATUS
    hsts: bool = True
    hsts_max_age: int = 31536000
    hsts_include_subdomains: bool = True
    use_forwarded_headers: bool = True  # the load generator sets X-Forwarded-For per user
    forwarded_for_header: str = "X-Forwarded-For"
    proxy_real_ip_cidr: tuple[str, ...] = ("0.0.0.0/0",)

    @classmethod
    def from_configmap(cls, data: dict[str, str]) -> ControllerSettings:
        def flag(key: str, default: bool) -> bool:
            return data.get(key, str(default)).lower() == "true"

        cidrs = data.get("proxy-real-ip-cidr", "0.0.0.0/0")
        return cls(
            limit_req_status_code=int(data.get("limit-req-status-code", DEFAULT_LIMIT_STATUS)),
            limit_conn_status_code=int(data.get("limit-conn-status-code", DEFAULT_LIMIT_STATUS)),
            hsts=flag("hsts", True),
            hsts_max_age=int(data.get("hsts-max-age", 31536000)),
            hsts_include_subdomains=flag("hsts-include-subdomains", True),
            use_forwarded_headers=flag("use-forwarded-headers", True),
            forwarded_for_header=data.get("forwarded-for-header", "X-Forwarded-For"),
            proxy_real_ip_cidr=_cidrs(cidrs),
        )


@dataclass(frozen=True)
class RateLimit:
    """One Ingress's rate limits, as ingress-nginx's ratelimit.Config: zero means unset."""

    name: str  # zone name prefix: <namespace>_<ingress>
    rps: int = 0
    rpm: int = 0
    connections: int = 0
    burst_multiplier: int = DEFAULT_BURST_MULTIPLIER
    allowlist: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """The suffix of its nginx variables ($whitelist_<id>, $limit_<id>)."""
        return re.sub(r"[^A-Za-z0-9_]", "_", self.name)

    def zones(self) -> list[str]:
        """Its `limit_conn_zone` / `limit_req_zone` directives (template.go buildRateLimitZones)."""
        key, out = f"$limit_{self.id}", []
        if self.connections:
            out.append(f"limit_conn_zone {key} zone={self.name}_conn:{ZONE_SIZE_MB}m;")
        if self.rpm:
            out.append(
                f"limit_req_zone {key} zone={self.name}_rpm:{ZONE_SIZE_MB}m rate={self.rpm}r/m;"
            )
        if self.rps:
            out.append(
                f"limit_req_zone {key} zone={self.name}_rps:{ZONE_SIZE_MB}m rate={self.rps}r/s;"
            )
        return out

    def limits(self) -> list[str]:
        """Its location directives, in template.go buildRateLimit's order: conn, rps, rpm."""
        out = []
        if self.connections:
            out.append(f"limit_conn {self.name}_conn {self.connections};")
        if self.rps:
            burst = self.rps * self.burst_multiplier
            out.append(f"limit_req zone={self.name}_rps burst={burst} nodelay;")
        if self.rpm:
            burst = self.rpm * self.burst_multiplier
            out.append(f"limit_req zone={self.name}_rpm burst={burst} nodelay;")
        return out


@dataclass(frozen=True)
class Location:
    path: str
    upstream: str
    ingress: str = ""  # which Ingress object and Service the path belongs to (for the log)
    service: str = ""
    rate_limit: RateLimit | None = None
    source_range: tuple[str, ...] = ()  # whitelist-source-range: empty = every address
    ssl_redirect: bool = True
    force_ssl_redirect: bool = False
    cors: tuple[tuple[str, str], ...] = ()
    basic_auth_file: str | None = None

    @property
    def cors_headers(self) -> dict[str, str]:
        return dict(self.cors)


@dataclass(frozen=True)
class Server:
    host: str
    tls: bool
    locations: tuple[Location, ...]


def plan_servers(
    ingresses: Sequence[Ingress], auth_files: dict[str, str], namespace: str = ""
) -> tuple[list[Server], list[RateLimit]]:
    """One server per host, merging every Ingress for it, and the rate limits in use.
    `auth_files` maps a basic-auth Secret name to the htpasswd file the platform wrote for it."""
    hosts: dict[str, list[Location]] = {}
    tls_hosts: set[str] = set()
    limits: list[RateLimit] = []
    for ing in ingresses:
        notes = {
            k.removeprefix(PREFIX): v for k, v in ing.annotations.items() if k.startswith(PREFIX)
        }
        limit = _rate_limit(f"{namespace}_{ing.name}" if namespace else ing.name, notes)
        if limit is not None:
            limits.append(limit)
        auth = None
        if notes.get("auth-type") == "basic":
            auth = auth_files[notes["auth-secret"].split("/")[-1]]
        tls_hosts.update(ing.tls_hosts)
        for rule in ing.rules:
            locations = hosts.setdefault(rule.host, [])
            if any(loc.path == rule.path for loc in locations):
                continue  # controller.go: the earlier Ingress keeps the path
            locations.append(
                Location(
                    rule.path,
                    upstream_name(rule.service, rule.port),
                    ing.name,
                    rule.service,
                    limit,
                    _cidrs(notes.get("whitelist-source-range", "")),
                    notes.get("ssl-redirect", "true") == "true",
                    notes.get("force-ssl-redirect") == "true",
                    tuple(_cors(notes).items()),
                    auth,
                )
            )
    servers = [Server(host, host in tls_hosts, tuple(locs)) for host, locs in hosts.items()]
    return servers, limits


def upstream_name(service: str, port: int | str) -> str:
    return f"{service}-{port}".replace(".", "_")


def upstreams_from_endpoints(
    ingresses: Sequence[Ingress], services: Sequence[Any], endpoints: Endpoints, namespace: str
) -> dict[str, list[tuple[str, int]]]:
    """`render_config`'s upstreams from `finchsim.platform.network.ready_endpoints`: each
    Ingress backend (a Service port by number or by name, resolved through the Service) to its
    ready (pod IP, target port) pairs; a backend whose Service or port is unknown gets none
    (ingress-nginx answers 503 for it)."""
    ports: dict[tuple[str, str], int] = {}
    for raw in services:
        svc = as_dict(raw)
        meta = svc.get("metadata") or {}
        if meta.get("namespace", "default") != namespace:
            continue
        for port in (svc.get("spec") or {}).get("ports") or []:
            ports[(meta["name"], str(port["port"]))] = int(port["port"])
            if port.get("name"):
                ports[(meta["name"], port["name"])] = int(port["port"])
    out = {}
    for ing in ingresses:
        for rule in ing.rules:
            number = ports.get((rule.service, str(rule.port)))
            key = (namespace, rule.service, number) if number is not None else None
            out[upstream_name(rule.service, rule.port)] = (
                list(endpoints.get(key, [])) if key else []
            )
    return out


def endpoint_pairs(endpoints: Sequence[str]) -> list[tuple[str, int]]:
    """`host:port` strings as the (ip, port) pairs `render_config` takes."""
    pairs = []
    for endpoint in endpoints:
        host, _, port = endpoint.rpartition(":")
        pairs.append((host, int(port)))
    return pairs


def render_config(
    *,
    servers: list[Server],
    rate_limits: list[RateLimit],
    upstreams: dict[str, list[tuple[str, int]]],
    settings: ControllerSettings,
    http_port: int,
    https_port: int,
    run_dir: Path,
    cert: Path,
    key: Path,
) -> str:
    """The complete nginx.conf text for the ingress. `upstreams` maps `upstream_name(service,
    port)` to that Service port's ready endpoints as (ip, port)."""
    env = Environment(
        loader=PackageLoader("finchsim.platform.local", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template("ingress.conf.j2").render(
        servers=servers,
        rate_limits=rate_limits,
        upstreams=upstreams,
        settings=settings,
        http_port=http_port,
        https_port=https_port,
        run_dir=run_dir,
        cert=cert,
        key=key,
    )


def _rate_limit(name: str, notes: dict[str, str]) -> RateLimit | None:
    def number(key: str) -> int:
        return int(notes.get(key, 0) or 0)

    rps, rpm, conn = number("limit-rps"), number("limit-rpm"), number("limit-connections")
    if not (rps or rpm or conn):
        return None  # main.go: no zone at all, so the allowlist alone does nothing
    allow = notes.get("limit-allowlist", notes.get("limit-whitelist", ""))
    return RateLimit(
        name,
        rps=rps,
        rpm=rpm,
        connections=conn,
        burst_multiplier=int(notes.get("limit-burst-multiplier", DEFAULT_BURST_MULTIPLIER)),
        allowlist=_cidrs(allow),
    )


def _cidrs(text: str) -> tuple[str, ...]:
    """Comma-separated addresses/CIDRs as nginx takes them (a bare address stays one)."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            net = ipaddress.ip_network(part, strict=False)  # ValueError names a bad one
            out.append(part if "/" in part else str(net.network_address))
    return tuple(out)


def _cors(notes: dict[str, str]) -> dict[str, str]:
    if notes.get("enable-cors") != "true":
        return {}
    # ingress-nginx's defaults for every CORS annotation left unset.
    return {
        "origin": notes.get("cors-allow-origin", "*"),
        "methods": notes.get("cors-allow-methods", "GET, PUT, POST, DELETE, PATCH, OPTIONS"),
        "headers": notes.get(
            "cors-allow-headers",
            "DNT,Keep-Alive,User-Agent,X-Requested-With,"
            "If-Modified-Since,Cache-Control,Content-Type,Range,Authorization",
        ),
        "credentials": notes.get("cors-allow-credentials", "true"),
        "max_age": notes.get("cors-max-age", "1728000"),
    }
