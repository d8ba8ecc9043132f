"""The request rate a load profile offers, per Ingress host, over time (no Locust involved).

For a platform without processes (kwok), a profile is not run by Locust but turned into an
offered rate for the load model:

    users(t)   the stages one after another, each reached at its spawn rate
    rate(user) constantThroughput: perSecond; constant: 1 / seconds; between: 2 / (min + max)
               (tasks per second, ignoring response times: a think time dominates them here)
    host share ApiUser: every task to the API host; BrowserUser: pageView to the SPA host
               (about 2 requests: the page and config.js are revalidated, hashed assets cached)
               and its other tasks to the API host

so the rate per host is Σ_class users(t) x weight share x rate x requests per task."""

from __future__ import annotations

from finchsim.durations import parse_duration
from finchsim.load.profile import Between, Constant, ConstantThroughput, LoadProfile

PAGE_VIEW_REQUESTS = 2.0


def users_at(profile: LoadProfile, t: float) -> float:
    """The user count `t` seconds into the run (stages in order, ramping at spawnRate)."""
    current = 0.0
    start = 0.0
    for stage in profile.stages:
        length = parse_duration(stage.duration)
        if t < start + length:
            elapsed = t - start
            step = stage.spawnRate * elapsed
            if stage.users >= current:
                return min(stage.users, current + step)
            return max(stage.users, current - step)
        current = float(stage.users)
        start += length
    return 0.0  # the shape has ended


def _rate(wait: Between | Constant | ConstantThroughput) -> float:
    if isinstance(wait, ConstantThroughput):
        return wait.perSecond
    if isinstance(wait, Constant):
        return 1.0 / wait.seconds if wait.seconds > 0 else 10.0  # cap: no think time at all
    mean = (wait.min + wait.max) / 2
    return 1.0 / mean if mean > 0 else 10.0


def offered_rps(profile: LoadProfile, t: float, scale: float = 1.0) -> dict[str, float]:
    """Requests per second per Ingress host at `t`, times `scale` (a what-if's traffic)."""
    users = users_at(profile, t) * scale
    mix = profile.users
    total_weight = mix.ApiUser.weight + mix.BrowserUser.weight
    api_host, web_host = profile.hosts.api, profile.hosts.frontend
    rps = {api_host: 0.0, web_host: 0.0}
    if users <= 0 or total_weight == 0:
        return rps
    api_users = users * mix.ApiUser.weight / total_weight
    rps[api_host] += api_users * _rate(mix.ApiUser.wait)
    web_users = users * mix.BrowserUser.weight / total_weight
    if web_users:
        tasks = mix.BrowserUser.tasks.model_dump()
        page_share = tasks["pageView"] / sum(tasks.values())
        per_user = _rate(mix.BrowserUser.wait)
        rps[web_host] += web_users * per_user * page_share * PAGE_VIEW_REQUESTS
        rps[api_host] += web_users * per_user * (1 - page_share)
    return rps
