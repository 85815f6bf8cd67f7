"""How many cores the process may use: affinity and cgroup quotas, read from files."""

from __future__ import annotations

import os
from pathlib import Path

from ember.xcs._internal.machine import cgroup_cpu_quota, usable_cores


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="ascii")


def test_usable_cores_is_within_what_the_machine_has() -> None:
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def test_v2_the_tightest_quota_up_the_tree_wins(tmp_path: Path) -> None:
    write(tmp_path / "proc", "0::/system.slice/app.service\n")
    mount = tmp_path / "cgroup"
    write(mount / "cpu.max", "max 100000\n")  # the root: no limit
    write(mount / "system.slice" / "cpu.max", "150000 100000\n")  # 1.5 cores
    write(mount / "system.slice" / "app.service" / "cpu.max", "400000 100000\n")
    assert cgroup_cpu_quota(tmp_path / "proc", mount) == 1.5


def test_v2_without_a_limit_or_files_is_none(tmp_path: Path) -> None:
    write(tmp_path / "proc", "0::/\n")
    mount = tmp_path / "cgroup"
    assert cgroup_cpu_quota(tmp_path / "proc", mount) is None  # no cpu.max at all
    write(mount / "cpu.max", "max 100000\n")
    assert cgroup_cpu_quota(tmp_path / "proc", mount) is None
    assert cgroup_cpu_quota(tmp_path / "missing", mount) is None


def test_v1_reads_the_cpu_hierarchy(tmp_path: Path) -> None:
    write(tmp_path / "proc", "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n0::/\n")
    mount = tmp_path / "cgroup"
    hierarchy = mount / "cpu,cpuacct"
    write(hierarchy / "cpu.cfs_quota_us", "-1\n")  # the root: no limit
    write(hierarchy / "cpu.cfs_period_us", "100000\n")
    write(hierarchy / "docker" / "abc" / "cpu.cfs_quota_us", "110000\n")  # 1.1 cores
    write(hierarchy / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_quota(tmp_path / "proc", mount) == 1.1


def test_garbled_files_are_ignored(tmp_path: Path) -> None:
    write(tmp_path / "proc", "nonsense\n0::/a\n")
    mount = tmp_path / "cgroup"
    write(mount / "a" / "cpu.max", "lots\n")
    assert cgroup_cpu_quota(tmp_path / "proc", mount) is None
