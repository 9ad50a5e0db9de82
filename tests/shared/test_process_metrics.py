"""The memory limit a worker reads from its cgroup, through its own view of /proc: cgroup v2
and v1, in a container (its cgroup at the mount's root) and on a host (a nested cgroup)."""

from __future__ import annotations

from pathlib import Path

from workerkit._process_metrics import memory_limit_bytes, thread_count


def fake(tmp: Path, cgroup: str, mountinfo: str, files: dict[str, str]) -> Path:
    proc = tmp / "proc"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text(cgroup)
    (proc / "mountinfo").write_text(mountinfo.replace("ROOT", str(tmp)))
    (proc / "status").write_text("Name:\tpython\nThreads:\t31\n")
    for rel, text in files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return proc


V2_MOUNT = "35 24 0:30 {root} ROOT/cg rw,nosuid - cgroup2 cgroup2 rw\n"
V1_MOUNT = "40 24 0:35 {root} ROOT/cg/memory rw,nosuid - cgroup cgroup rw,memory\n"


def test_cgroup_v2_in_a_container(tmp_path: Path) -> None:
    proc = fake(tmp_path, "0::/\n", V2_MOUNT.format(root="/"), {"cg/memory.max": "536870912\n"})
    assert memory_limit_bytes(proc) == 512 * 2**20
    assert thread_count(proc) == 31


def test_cgroup_v2_nested_on_a_host_takes_the_tightest_ancestor(tmp_path: Path) -> None:
    proc = fake(
        tmp_path,
        "0::/kubepods/pod1/ctr\n",
        V2_MOUNT.format(root="/"),
        {
            "cg/kubepods/memory.max": "1073741824\n",
            "cg/kubepods/pod1/memory.max": "268435456\n",
            "cg/kubepods/pod1/ctr/memory.max": "max\n",
        },
    )
    assert memory_limit_bytes(proc) == 256 * 2**20


def test_cgroup_v1_and_unlimited(tmp_path: Path) -> None:
    limited = fake(
        tmp_path / "a",
        "4:memory:/docker/abc\n0::/\n",
        V1_MOUNT.format(root="/docker/abc"),
        {"cg/memory/memory.limit_in_bytes": "805306368\n"},
    )
    assert memory_limit_bytes(limited) == 768 * 2**20
    unlimited = fake(
        tmp_path / "b",
        "4:memory:/\n",
        V1_MOUNT.format(root="/"),
        {"cg/memory/memory.limit_in_bytes": "9223372036854771712\n"},
    )
    assert memory_limit_bytes(unlimited) is None


def test_no_cgroup_information_is_no_limit(tmp_path: Path) -> None:
    assert memory_limit_bytes(tmp_path / "nowhere") is None
    assert thread_count(tmp_path / "nowhere") is None
