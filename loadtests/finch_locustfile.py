"""Locust users for Finch behind its ingress, shaped by a load profile (loadtests/profiles/).

Runs only as its own process (gevent patches everything it touches): `finchsim` launches it
through `finchsim.load.LocustRun`, which passes the validated profile as JSON in
FINCHSIM_LOAD_PROFILE. By hand (the profile's YAML is validated the same way):

    FINCHSIM_LOAD_PROFILE=loadtests/profiles/smoke.yaml .venv/bin/locust \\
        -f loadtests/finch_locustfile.py --headless -H https://127.0.0.1:8443

One base URL reaches every virtual host: the Host header picks the API or the SPA. Each user
sends its own X-Forwarded-For, because the ingress rate-limits per client address."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Locust loads this file after patching the process, so import order here is free.
import urllib3
from finch_locust_support import RunState, is_loopback_url, parse_cache_control
from locust import (
    HttpUser,
    LoadTestShape,
    User,
    between,
    constant,
    constant_throughput,
    events,
    task,
)
from locust.env import Environment
from locust.exception import StopUser

HERE = Path(__file__).resolve().parent
# RFC 2544 benchmarking range: never routed, so no real client is ever impersonated.
CLIENT_NET = ipaddress.ip_network("198.18.0.0/15")
META_RETRY_S = 10.0  # chosen: a client would not re-ask for static metadata on every click
ASSET_REF = re.compile(r"""(?:src|href)="(/[^"]+)\"""")


def _read_profile() -> dict[str, Any]:
    path = Path(os.environ.get("FINCHSIM_LOAD_PROFILE") or HERE / "profiles" / "baseline.yaml")
    if path.suffix == ".json":
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    from finchsim.load.profile import load_profile  # by hand: the same validation as finchsim

    return load_profile(path).runtime(path.stem)


PROFILE = _read_profile()
STATE = RunState(PROFILE["maxRequests"], tuple(PROFILE["rateLimitStatuses"]))
API_HOST, WEB_HOST = PROFILE["hosts"]["api"], PROFILE["hosts"]["frontend"]
if not PROFILE["verifyTls"]:
    # Verification is off on purpose (self-signed local ingress): one warning per request
    # would bury the log.
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def _wait(spec: dict[str, Any]) -> Any:
    if spec["type"] == "between":
        return between(spec["min"], spec["max"])
    if spec["type"] == "constant":
        return constant(spec["seconds"])
    return constant_throughput(spec["perSecond"])


class FinchUser(HttpUser):
    """What every Finch user shares: its client address, the request budget, the API calls."""

    abstract = True

    def on_start(self) -> None:
        index = 0 if PROFILE["sharedClientIp"] else STATE.new_user_index()
        self.client_ip = str(CLIENT_NET[1 + index % (CLIENT_NET.num_addresses - 2)])
        STATE.user_started(self.client_ip)
        self.client.verify = PROFILE["verifyTls"]
        self.client.headers["X-Forwarded-For"] = self.client_ip
        self.extra_api_headers: dict[str, str] = {}
        self.accounts, self.categories = (1, 1), 1
        self.has_meta, self.meta_tried = False, -META_RETRY_S

    def call(self, method: str, path: str, name: str, host: str = API_HOST, **kw: Any) -> Any:
        """One request within the run's budget; rate-limited answers fail as `rate limited N`."""
        if not STATE.acquire(self.environment):
            raise StopUser()  # budget spent: the runner quits once nothing is in flight
        headers = {"Host": host, **(self.extra_api_headers if host == API_HOST else {})}
        headers.update(kw.pop("headers", {}))
        try:
            with self.client.request(
                method, path, name=name, headers=headers, catch_response=True,
                timeout=PROFILE["requestTimeout"], **kw,
            ) as resp:
                STATE.record(name, resp.status_code)
                if resp.status_code in STATE.rate_limit_statuses:
                    resp.failure(f"rate limited {resp.status_code}")
                elif resp.status_code == 0:
                    resp.failure(f"no response: {resp.error!r}")
                elif resp.status_code >= 400:
                    resp.failure(f"HTTP {resp.status_code}")
                else:
                    resp.success()
                return resp
        finally:
            STATE.release(self.environment)

    def ensure_meta(self) -> None:
        """Fetch the account id range and category count once; after a failure (e.g. rate
        limited) retry at most every META_RETRY_S, using account 1 meanwhile."""
        if self.has_meta or time.monotonic() - self.meta_tried < META_RETRY_S:
            return
        self.meta_tried = time.monotonic()
        resp = self.call("GET", "/api/meta", "/api/meta")
        if resp.status_code != 200:
            return
        try:
            meta = resp.json()
            low, high = meta["account_ids"]
            categories = int(meta["categories"])
        except (ValueError, KeyError, TypeError):
            return  # not Finch's answer; the request itself was already judged by status
        if low is not None:  # None: no account seeded yet
            self.accounts, self.categories = (int(low), int(high)), max(1, categories)
            self.has_meta = True

    def account(self) -> int:
        return random.randint(*self.accounts)

    def account_summary(self) -> None:
        self.ensure_meta()
        self.call("GET", f"/api/accounts/{self.account()}/summary", "/api/accounts/[id]/summary")

    def list_transactions(self) -> None:
        self.call("GET", f"/api/transactions?page={random.randint(1, 5)}", "/api/transactions")

    def create_transaction(self) -> None:
        self.ensure_meta()
        body = {
            "account": self.account(),
            "category": random.randint(1, self.categories),  # categories are seeded as 1..n
            "amount_cents": -random.randint(100, 20_000),
            "description": "locust",
        }
        self.call("POST", "/api/transactions", "/api/transactions", json=body)

    def compute(self) -> None:
        self.call("GET", f"/api/compute?n={random.randint(1, 10**6)}", "/api/compute")

    def task_stats(self) -> None:
        self.call("GET", "/api/tasks/stats", "/api/tasks/stats")


_API = PROFILE["users"]["ApiUser"]
_WEB = PROFILE["users"]["BrowserUser"]


class ApiUser(FinchUser):
    """A script or mobile client: API calls only, weighted by the profile."""

    weight = max(1, _API["weight"])  # 0 means "not spawned": the shape leaves the class out
    wait_time = _wait(_API["wait"])

    def on_start(self) -> None:
        super().on_start()
        self.ensure_meta()

    @task(_API["tasks"]["accountSummary"])
    def summary(self) -> None:
        self.account_summary()

    @task(_API["tasks"]["listTransactions"])
    def transactions(self) -> None:
        self.list_transactions()

    @task(_API["tasks"]["createTransaction"])
    def create(self) -> None:
        self.create_transaction()

    @task(_API["tasks"]["compute"])
    def cpu(self) -> None:
        self.compute()

    @task(_API["tasks"]["taskStats"])
    def stats(self) -> None:
        self.task_stats()


class BrowserUser(FinchUser):
    """A person in a browser: loads the SPA through an HTTP cache, then uses the API from it."""

    weight = max(1, _WEB["weight"])
    wait_time = _wait(_WEB["wait"])

    def on_start(self) -> None:
        super().on_start()
        scheme = urlsplit(self.host or "").scheme or "https"
        # Like the SPA's fetch(): cross-origin calls carry the page's origin (CORS).
        self.extra_api_headers = {"Origin": f"{scheme}://{WEB_HOST}"}
        self.cache: dict[str, dict[str, Any]] = {}
        self.page_view()
        self.ensure_meta()
        self.task_stats()

    def fetch_static(self, path: str, name: str) -> dict[str, Any] | None:
        """GET a frontend file the way a browser cache would: no request while it is fresh,
        else revalidate with its validators (a 304 keeps the cached copy)."""
        entry = self.cache.get(path)
        if entry is not None and entry["fresh_until"] > time.monotonic():
            return entry
        headers = {}
        if entry is not None and entry["etag"]:
            headers["If-None-Match"] = entry["etag"]
        if entry is not None and entry["modified"]:
            headers["If-Modified-Since"] = entry["modified"]
        resp = self.call("GET", path, name, host=WEB_HOST, headers=headers)
        if resp.status_code == 200:
            entry = {"etag": resp.headers.get("ETag"), "modified": resp.headers.get(
                "Last-Modified"), "body": resp.text}
        if resp.status_code in (200, 304) and entry is not None:
            max_age = parse_cache_control(resp.headers.get("Cache-Control", ""))
            entry["fresh_until"] = time.monotonic() + max_age
            self.cache[path] = entry
        return entry

    @task(_WEB["tasks"]["pageView"])
    def page_view(self) -> None:
        page = self.fetch_static("/", "[spa] /")
        self.fetch_static("/config.js", "[spa] /config.js")
        if page is None:
            return
        for ref in ASSET_REF.findall(page["body"]):
            if ref != "/config.js":
                name = "[spa] /assets/[hashed]" if ref.startswith("/assets/") else f"[spa] {ref}"
                self.fetch_static(ref, name)

    @task(_WEB["tasks"]["accountSummary"])
    def summary(self) -> None:
        self.account_summary()

    @task(_WEB["tasks"]["listTransactions"])
    def transactions(self) -> None:
        self.list_transactions()

    @task(_WEB["tasks"]["createTransaction"])
    def create(self) -> None:
        self.create_transaction()

    @task(_WEB["tasks"]["taskStats"])
    def stats(self) -> None:
        self.task_stats()


class ProfileShape(LoadTestShape):
    """The profile's stages one after another; the test ends after the last one, or at
    `maxDuration` if that comes first."""

    def tick(self) -> tuple[int, float, list[type[User]] | None] | None:
        now = self.get_run_time()
        end = 0.0
        for stage in PROFILE["stages"]:
            end += stage["duration"]
            if now < end:
                break
        else:
            STATE.note_stop("stages done")
            return None
        if now >= PROFILE["maxDuration"]:
            STATE.note_stop("maxDuration reached")
            return None
        classes: list[type[User]] = [
            c for c in (ApiUser, BrowserUser) if PROFILE["users"][c.__name__]["weight"] > 0
        ]
        return stage["users"], stage["spawnRate"], classes


@events.init.add_listener
def _refuse_remote_hosts(environment: Environment, **_kw: Any) -> None:
    # Load goes to this machine only; a typo in --host must not send it anywhere else.
    if not is_loopback_url(environment.host or ""):
        raise SystemExit(f"refusing to load a non-loopback host: {environment.host!r}")
    STATE.environment = environment
    STATE.stop_on_sigterm(environment)


@events.quit.add_listener
def _write_summary(exit_code: int, **_kw: Any) -> None:
    path = os.environ.get("FINCHSIM_LOAD_SUMMARY")
    if path:
        Path(path).write_text(json.dumps(STATE.summary(PROFILE["name"], exit_code), indent=2))
