"""One local platform per machine: the second is refused naming the first, the lock goes with
its holder (release, or death), and a planted symlink is not followed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from finchsim.errors import PlatformError
from finchsim.platform.providers.local_lock import MachineLock


def test_the_second_is_refused_naming_the_first(tmp_path: Path) -> None:
    first, second = MachineLock(tmp_path / "lock"), MachineLock(tmp_path / "lock")
    first.acquire("pid 1, run A, /checkout-a")
    with pytest.raises(PlatformError, match=r"another local platform .*\(pid 1, run A, /check"):
        second.acquire("pid 2, run B, /checkout-b")
    first.release()
    second.acquire("pid 2, run B, /checkout-b")  # free again
    second.release()


def test_a_dead_holder_holds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from finchsim.platform.providers.local_lock import MachineLock; "
            f"MachineLock(Path({str(path)!r})).acquire('child'); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    with pytest.raises(PlatformError, match=r"\(child\)"):
        MachineLock(path).acquire("me")
    holder.kill()
    holder.wait()
    holder.stdout.close()
    lock = MachineLock(path)
    lock.acquire("me")
    lock.release()


def test_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("keep")
    os.symlink(target, tmp_path / "lock")
    with pytest.raises(PlatformError, match="cannot open the local platform's lock"):
        MachineLock(tmp_path / "lock").acquire("me")
    assert target.read_text() == "keep"
