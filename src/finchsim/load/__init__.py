"""Load generation: load profiles (`loadtests/profiles/`) and the Locust launcher."""

from finchsim.load.locust_run import LocustRun, check_loopback
from finchsim.load.profile import LoadProfile, load_profile
from finchsim.load.results import EndpointStats, HistoryPoint, Latency, LoadResult

__all__ = [
    "EndpointStats",
    "HistoryPoint",
    "Latency",
    "LoadProfile",
    "LoadResult",
    "LocustRun",
    "check_loopback",
    "load_profile",
]
