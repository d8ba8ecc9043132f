"""The local platform's ingress: plain nginx configured the way ingress-nginx would be.

From the Ingress objects and the controller ConfigMap it reproduces, with ingress-nginx's
semantics (checked against its source, internal/ingress/annotations/ratelimit and the template):
- per-IP rate limits: `limit-rpm`/`limit-rps` become a `limit_req_zone` keyed on the client
  address with `burst = limit x limit-burst-multiplier (default 5)` and `nodelay`; rejections get
  the controller's `limit-req-status-code` (default 503);
- the client address comes from `X-Forwarded-For` (`use-forwarded-headers`), so each simulated
  user can have its own IP;
- `ssl-redirect` (308 to https) for hosts with TLS, HSTS on https responses (controller `hsts`,
  default on), CORS headers (`enable-cors`, `cors-allow-origin`, ...), `auth-type: basic`;
- an upstream per Service holding only *ready* endpoints; an empty one answers 503 like
  ingress-nginx's default backend.
Load balancing is round robin (ingress-nginx's default; its `ewma` is not emulated)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from finchsim.platform.topology import Ingress

PREFIX = "nginx.ingress.kubernetes.io/"
DEFAULT_BURST_MULTIPLIER = 5
DEFAULT_LIMIT_STATUS = 503


@dataclass(frozen=True)
class ControllerSettings:
    """The ingress-nginx controller ConfigMap keys the emulation honours, with their defaults."""

    limit_req_status_code: int = DEFAULT_LIMIT_STATUS
    hsts: bool = True
    hsts_max_age: int = 31536000
    hsts_include_subdomains: bool = True
    use_forwarded_headers: bool = True  # the load generator sets X-Forwarded-For per user

    @classmethod
    def from_configmap(cls, data: dict[str, str]) -> ControllerSettings:
        def flag(key: str, default: bool) -> bool:
            return data.get(key, str(default)).lower() == "true"

        return cls(
            limit_req_status_code=int(data.get("limit-req-status-code", DEFAULT_LIMIT_STATUS)),
            hsts=flag("hsts", True),
            hsts_max_age=int(data.get("hsts-max-age", 31536000)),
            hsts_include_subdomains=flag("hsts-include-subdomains", True),
            use_forwarded_headers=flag("use-forwarded-headers", True),
        )


@dataclass(frozen=True)
class Location:
    path: str
    upstream: str
    rate_zone: str | None
    burst: int
    ingress: str = ""  # which Ingress object and Service the path belongs to (for the log)
    service: str = ""


@dataclass(frozen=True)
class Server:
    host: str
    tls: bool
    ssl_redirect: bool
    locations: tuple[Location, ...]
    cors: dict[str, str]
    basic_auth_file: str | None


@dataclass(frozen=True)
class RateZone:
    name: str
    rate: str  # nginx syntax: 100r/m


def plan_servers(
    ingresses: list[Ingress], auth_files: dict[str, str]
) -> tuple[list[Server], list[RateZone]]:
    """Servers and rate zones for a set of Ingress objects. `auth_files` maps a basic-auth
    Secret name to the htpasswd file the platform wrote for it."""
    servers: list[Server] = []
    zones: list[RateZone] = []
    for ing in ingresses:
        notes = {
            k.removeprefix(PREFIX): v for k, v in ing.annotations.items() if k.startswith(PREFIX)
        }
        zone, burst = _rate_zone(ing.name, notes)
        if zone:
            zones.append(zone)
        cors = _cors(notes)
        auth = None
        if notes.get("auth-type") == "basic":
            auth = auth_files[notes["auth-secret"].split("/")[-1]]
        hosts = dict.fromkeys(rule.host for rule in ing.rules)
        for host in hosts:
            tls = host in ing.tls_hosts
            redirect = tls and (
                notes.get("ssl-redirect", "true") == "true"
                or notes.get("force-ssl-redirect") == "true"
            )
            locations = tuple(
                Location(
                    rule.path,
                    upstream_name(rule.service, rule.port),
                    zone.name if zone else None,
                    burst,
                    ing.name,
                    rule.service,
                )
                for rule in ing.rules
                if rule.host == host
            )
            servers.append(Server(host, tls, redirect, locations, cors, auth))
    return servers, zones


def upstream_name(service: str, port: int | str) -> str:
    return f"{service}-{port}".replace(".", "_")


def render_config(
    *,
    servers: list[Server],
    zones: list[RateZone],
    upstreams: dict[str, list[str]],
    settings: ControllerSettings,
    http_port: int,
    https_port: int,
    run_dir: Path,
    cert: Path,
    key: Path,
) -> str:
    """The complete nginx.conf text for the ingress."""
    env = Environment(
        loader=PackageLoader("finchsim.platform.local", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template("ingress.conf.j2").render(
        servers=servers,
        zones=zones,
        upstreams=upstreams,
        settings=settings,
        http_port=http_port,
        https_port=https_port,
        run_dir=run_dir,
        cert=cert,
        key=key,
    )


def _rate_zone(ingress: str, notes: dict[str, str]) -> tuple[RateZone | None, int]:
    multiplier = int(notes.get("limit-burst-multiplier", DEFAULT_BURST_MULTIPLIER))
    for key, unit in (("limit-rpm", "m"), ("limit-rps", "s")):
        if key in notes:
            limit = int(notes[key])
            return RateZone(f"{ingress}_{key}", f"{limit}r/{unit}"), limit * multiplier
    return None, 0


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
