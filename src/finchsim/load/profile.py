"""Load profiles (`loadtests/profiles/*.yaml`, `kind: LoadProfile`) as a strict model.

A profile says how Locust drives Finch: the stages of the user count, the mix of user classes,
each class's task weights and wait time, and the hard caps (`maxRequests`, `maxDuration`) that
keep every run bounded. `runtime()` turns it into the plain JSON the locustfile reads, so the
Locust process needs neither pydantic nor this package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from finchsim.durations import parse_duration
from finchsim.inputs import Document, Strict, load_document


def _duration(value: str) -> str:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from exc
    if seconds <= 0:
        raise PydanticCustomError("duration", "must be longer than 0s")
    return value


def _not_all_zero(weights: dict[str, int], what: str) -> None:
    if not any(weights.values()):
        raise PydanticCustomError("weights", f"at least one {what} weight must be above 0")


class Stage(Strict):
    """Hold `users` users for `duration`, reaching them at `spawnRate` users per second."""

    duration: str
    users: int = Field(ge=1)
    spawnRate: float = Field(gt=0)

    _check_duration = field_validator("duration")(_duration)


class Between(Strict):
    """Wait a random time between `min` and `max` seconds after each task."""

    type: Literal["between"]
    min: float = Field(ge=0)
    max: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Between:
        if self.min > self.max:
            raise PydanticCustomError("order", "min must not be above max")
        return self


class Constant(Strict):
    """Wait exactly `seconds` after each task."""

    type: Literal["constant"]
    seconds: float = Field(ge=0)


class ConstantThroughput(Strict):
    """Pace each user to `perSecond` tasks per second (if its tasks are fast enough)."""

    type: Literal["constantThroughput"]
    perSecond: float = Field(gt=0)


WaitTime = Annotated[Between | Constant | ConstantThroughput, Field(discriminator="type")]
# Chosen: a think time like a person reading a page; profiles override it.
DEFAULT_WAIT = Between(type="between", min=1.0, max=3.0)


class ApiTasks(Strict):
    """Relative weights of ApiUser's tasks (0 disables one). Defaults: a read-mostly mix."""

    accountSummary: int = Field(default=6, ge=0)
    listTransactions: int = Field(default=3, ge=0)
    createTransaction: int = Field(default=1, ge=0)
    compute: int = Field(default=1, ge=0)
    taskStats: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _some(self) -> ApiTasks:
        _not_all_zero(self.model_dump(), "task")
        return self


class BrowserTasks(Strict):
    """Relative weights of BrowserUser's tasks; `pageView` reloads the SPA through its cache."""

    pageView: int = Field(default=1, ge=0)
    accountSummary: int = Field(default=3, ge=0)
    listTransactions: int = Field(default=2, ge=0)
    createTransaction: int = Field(default=1, ge=0)
    taskStats: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _some(self) -> BrowserTasks:
        _not_all_zero(self.model_dump(), "task")
        return self


class ApiUserSpec(Strict):
    weight: int = Field(default=1, ge=0)
    wait: WaitTime = DEFAULT_WAIT
    tasks: ApiTasks = ApiTasks()


class BrowserUserSpec(Strict):
    weight: int = Field(default=1, ge=0)
    wait: WaitTime = DEFAULT_WAIT
    tasks: BrowserTasks = BrowserTasks()


class UserMix(Strict):
    """The Locust user classes by name, each with its share of the users (`weight`)."""

    ApiUser: ApiUserSpec = ApiUserSpec()
    BrowserUser: BrowserUserSpec = BrowserUserSpec()

    @model_validator(mode="after")
    def _some(self) -> UserMix:
        _not_all_zero(
            {"ApiUser": self.ApiUser.weight, "BrowserUser": self.BrowserUser.weight}, "user class"
        )
        return self


class Hosts(Strict):
    """Virtual hosts the ingress routes on (sent as the Host header to the one base URL)."""

    api: str = "api.finch.example.com"
    frontend: str = "finch.example.com"


class LoadProfile(Document):
    """One load profile: what Locust does, for how long, and the caps that end it."""

    kind: Literal["LoadProfile"]
    description: str = ""
    stages: tuple[Stage, ...]
    users: UserMix = UserMix()
    maxRequests: int = Field(ge=1)
    maxDuration: str
    # False: each user sends its own X-Forwarded-For; True: all share one (hits the rate limit).
    sharedClientIp: bool = False
    # False by default: the local ingress serves a self-signed certificate.
    verifyTls: bool = False
    hosts: Hosts = Hosts()
    # Statuses counted as "rate limited": the controller settings (cluster/kind/
    # ingress-nginx-controller-settings.yaml) set limit-req-status-code 429. Not 503 by default:
    # ingress-nginx also answers 503 when a Service has no ready endpoint.
    rateLimitStatuses: tuple[Annotated[int, Field(ge=400, le=599)], ...] = (429,)
    requestTimeout: str = "10s"

    _check_durations = field_validator("maxDuration", "requestTimeout")(_duration)

    @field_validator("stages")
    @classmethod
    def _some_stage(cls, stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
        if not stages:
            raise PydanticCustomError("stages", "at least one stage is needed")
        return stages

    @property
    def max_duration_seconds(self) -> float:
        return parse_duration(self.maxDuration)

    @property
    def request_timeout_seconds(self) -> float:
        return parse_duration(self.requestTimeout)

    @property
    def stages_seconds(self) -> float:
        """Length of all stages together; the run ends at this or `maxDuration`, if sooner."""
        return sum(parse_duration(s.duration) for s in self.stages)

    @property
    def planned_seconds(self) -> float:
        return min(self.stages_seconds, self.max_duration_seconds)

    def runtime(self, name: str) -> dict[str, Any]:
        """The plain-JSON form the locustfile reads: durations in seconds, every default filled."""
        data = self.model_dump(mode="json")
        data["name"] = name
        data["maxDuration"] = self.max_duration_seconds
        data["requestTimeout"] = self.request_timeout_seconds
        data["stages"] = [
            {"duration": parse_duration(s.duration), "users": s.users, "spawnRate": s.spawnRate}
            for s in self.stages
        ]
        return data


def load_profile(path: Path, shown_as: str | None = None) -> LoadProfile:
    """Load and validate a LoadProfile file; raises InputError listing every problem."""
    return load_document(path, LoadProfile, shown_as)
