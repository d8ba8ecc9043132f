"""Reading the values of one rendered object the way the API server checks them.

The offline schemas type a quantity as "int or string" and a count as an unbounded integer, so
`cpu: lots` or `replicas: -3` pass them; the API server's validation refuses both. `Fields`
applies those rules (k8s.io/kubernetes pkg/apis/{core,apps,autoscaling,policy,batch}/validation)
to the values the platforms read, and collects one Problem per bad value, naming the source
file, the object and the field, instead of letting a ValueError escape later."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from finchsim.errors import Problem
from finchsim.platform.manifests import Rendered

# k8s.io/apimachinery pkg/api/resource/quantity.go, the serialization format of Quantity:
# <signedNumber><suffix>, number = digits, digits.digits, digits. or .digits; suffix = a binary
# SI suffix (Ki..Ei), a decimal SI one (n u m "" k M G T P E; "K" is not one), or e/E and a
# signed integer. No spaces, ASCII digits only.
_QUANTITY = re.compile(
    r"([+-]?)([0-9]+\.?[0-9]*|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_PERCENT = re.compile(r"[0-9]+%")  # intstr's percentage form, as validation accepts it


def parse_quantity(value: object) -> Decimal:
    """A Kubernetes quantity (`250m`, `1.5`, `512Mi`, `1e3`, or a YAML number) as a Decimal.

    Raises ValueError for anything `resource.ParseQuantity` refuses."""
    text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    match = _QUANTITY.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid quantity {value!r}")
    sign, number, suffix = match.groups()
    amount = Decimal(number) * (-1 if sign == "-" else 1)
    if suffix in _BINARY:
        return amount * Decimal(1024) ** _BINARY[suffix]
    if suffix:
        exponent = _DECIMAL[suffix] if suffix in _DECIMAL else int(suffix[1:])
        return amount.scaleb(exponent)
    return amount


@dataclass
class Fields:
    """The checks for one object; every problem found is appended to `problems`."""

    item: Rendered
    problems: list[Problem] = field(default_factory=list)

    def bad(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.item.source, f"{self.item.ref} {path}", message))

    def quantity(self, value: Any, path: str, scale: int = 1) -> int:
        """A non-negative quantity times `scale`, rounded up as Kubernetes does (0.1m is 1m);
        0 when absent or invalid."""
        if value is None:
            return 0
        try:
            amount = parse_quantity(value)
        except ValueError as exc:
            self.bad(path, str(exc))
            return 0
        if amount < 0:  # ValidateNonnegativeQuantity
            self.bad(path, f"must be greater than or equal to 0, got {value!r}")
            return 0
        return math.ceil(amount * scale)

    def count(self, value: Any, path: str, default: int, minimum: int = 0) -> int:
        """An integer field at least `minimum` (ValidateNonnegativeField and friends)."""
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            self.bad(path, f"expected an integer, got {value!r}")
            return default
        if value < minimum:
            self.bad(path, f"must be greater than or equal to {minimum}, got {value}")
            return default
        return value

    def int_or_percent(
        self, value: Any, path: str, default: int | str, at_most_100: bool = False
    ) -> int | str:
        """ValidatePositiveIntOrPercent (and IsNotMoreThan100Percent when asked)."""
        if value is None:
            return default
        if isinstance(value, str) and _PERCENT.fullmatch(value):
            if at_most_100 and int(value[:-1]) > 100:
                self.bad(path, f"must not be greater than 100%, got {value!r}")
                return default
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return self.count(value, path, 0) if value < 0 else value
        self.bad(path, f"expected an integer or a percentage like 25%, got {value!r}")
        return default

    def schedule(self, value: Any, path: str) -> str:
        """A CronJob schedule: five cron fields or a descriptor such as @hourly."""
        text = value if isinstance(value, str) else ""
        five = text.startswith("@") or len(text.split()) == 5
        if not five or not croniter.is_valid(text):
            self.bad(path, f"invalid cron schedule {value!r}")
        return text

    def time_zone(self, value: Any, path: str) -> str:
        if value is None:
            return "Etc/UTC"
        try:
            ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            self.bad(path, f"unknown time zone {value!r}")
            return "Etc/UTC"
        return str(value)
