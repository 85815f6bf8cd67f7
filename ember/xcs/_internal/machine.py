"""What the machine gives this process: how many cores it may use.

Threads can only show that ops release the GIL when a second core is there to run
them. The count takes the CPU affinity (``taskset``, ``cpuset``) and the cgroup CPU
quota (containers, systemd ``CPUQuota=``, Kubernetes CPU limits) into account: the
smallest quota on the way from this process's cgroup up to the root, rounded down
(1.5 cores of quota cannot run two threads at full speed). Read once per process.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["cgroup_cpu_quota", "usable_cores"]


@functools.cache
def usable_cores() -> int:
    """How many cores this process may run on at full speed (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, math.floor(quota))
    return max(1, cores)


def cgroup_cpu_quota(
    proc_cgroup: str | os.PathLike[str] = "/proc/self/cgroup",
    mount: str | os.PathLike[str] = "/sys/fs/cgroup",
) -> float | None:
    """The tightest cgroup CPU quota over this process's cgroup and its parents.

    Args:
        proc_cgroup: The process's cgroup membership (``/proc/self/cgroup``).
        mount: Where the cgroup file systems are mounted.

    Returns:
        The quota in cores (``cpu.max`` of cgroup v2, ``cpu.cfs_quota_us`` over
        ``cpu.cfs_period_us`` of v1), or None when no quota is set or none can be read.
    """
    try:
        lines = Path(proc_cgroup).read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    quotas: list[float] = []
    for line in lines:
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if controllers == "":  # v2: one unified hierarchy
            quotas += _walk_up(Path(mount), path, _v2_quota)
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's hierarchy
            hierarchy = Path(mount) / controllers  # "cpu,cpuacct", often linked as "cpu"
            if not hierarchy.is_dir():
                hierarchy = Path(mount) / "cpu"
            quotas += _walk_up(hierarchy, path, _v1_quota)
    return min(quotas, default=None)


def _walk_up(root: Path, path: str, read: Callable[[Path], float | None]) -> list[float]:
    """Quotas set in ``root/path`` and each of its parents up to ``root``."""
    found = []
    here = root / path.lstrip("/")
    while True:
        quota = read(here)
        if quota is not None:
            found.append(quota)
        if here == root or root not in here.parents:
            return found
        here = here.parent


def _v2_quota(directory: Path) -> float | None:
    try:
        quota, period = (directory / "cpu.max").read_text(encoding="ascii").split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _v1_quota(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text(encoding="ascii"))
        period = int((directory / "cpu.cfs_period_us").read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period
