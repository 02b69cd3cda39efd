"""Model-written code runs isolated: no host files, no network, bounded CPU, memory, processes, output."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from rmguard.tamper.sandbox import _jail
from rmguard.tamper.sandbox.jail import Jail, JailLimits


@pytest.fixture(scope="module")
def strict():
    with Jail(JailLimits(timeout_seconds=1.5, cpu_seconds=1, output_bytes=4096)) as box:
        yield box


def test_code_sees_only_its_files_as_a_user_of_its_own(strict: Jail) -> None:
    code = (
        "import os; print(open('data.txt').read(), os.getuid(), os.getgid(), os.getcwd(), dict(os.environ))"
    )
    first = strict.run({"data.txt": "hello"}, code).stdout.split()
    second = strict.run({"data.txt": "hello"}, code).stdout.split()
    assert first[0] == "hello" and first[3:] == ["/root", "{}"]  # the home folder at the path records use
    # this host maps every id, so each job runs as JOB_ID_BASE + its supervisor's pid: unique among live jobs
    assert int(first[1]) == int(first[2]) > _jail.JOB_ID_BASE and first[1] != second[1]


@pytest.mark.parametrize("path", ["/etc/passwd", __file__, "/root/.bashrc", "/proc/1/environ"])
def test_cannot_read_outside(strict: Jail, path: str) -> None:
    result = strict.run({}, f"open({path!r}).read()")
    assert result.outcome == "error" and (
        "FileNotFoundError" in result.stderr or "PermissionError" in result.stderr
    )


@pytest.mark.parametrize("path", ["/tmp/escape", "/usr/escape", "/escape", "../escape"])
def test_cannot_write_outside(strict: Jail, path: str) -> None:
    result = strict.run({}, f"open({path!r}, 'w').write('x')")
    assert result.outcome == "error"
    assert any(e in result.stderr for e in ("PermissionError", "Read-only", "FileNotFoundError"))


def test_writes_inside_do_not_reach_the_host(strict: Jail, tmp_path) -> None:
    assert strict.run({}, "open('made.txt', 'w').write('x'); print(open('made.txt').read())").stdout == "x\n"
    assert strict.run({}, "import os; print(os.path.exists('made.txt'))").stdout == "False\n"


def test_no_network(strict: Jail) -> None:
    code = "import socket; s = socket.socket(); s.settimeout(1); s.connect(('1.1.1.1', 80))"
    result = strict.run({}, code)
    assert result.outcome == "error" and "unreachable" in result.stderr


def test_fork_bomb_is_contained(strict: Jail) -> None:
    result = strict.run({}, "import os\nwhile True:\n    os.fork()")
    assert result.outcome in ("error", "killed", "timeout")
    assert strict.run({}, "print('still alive')").stdout == "still alive\n"


def test_memory_is_bounded(strict: Jail) -> None:
    result = strict.run({}, "x = bytearray(4 * 1024 ** 3)")
    assert result.outcome in ("error", "killed") and "MemoryError" in result.stderr


def test_cpu_loop_times_out(strict: Jail) -> None:
    assert strict.run({}, "while True: pass").outcome == "timeout"


def test_sleep_hits_the_wall_clock_timeout(strict: Jail) -> None:
    assert strict.run({}, "import time; time.sleep(60)").outcome == "timeout"


def test_huge_output_is_truncated(strict: Jail) -> None:
    result = strict.run({}, "import sys\nfor _ in range(10000): sys.stdout.write('x' * 1000)")
    assert result.truncated and len(result.stdout) == 4096


def test_huge_files_are_refused(strict: Jail) -> None:
    result = strict.run({}, "open('big', 'w').write('x' * (50 * 1024 * 1024))")
    assert result.outcome == "error" and ("File too large" in result.stderr or "MemoryError" in result.stderr)


def test_fails_closed_without_root(monkeypatch) -> None:
    from rmguard.tamper.sandbox.jail import JailUnavailable

    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with Jail() as box, pytest.raises(JailUnavailable, match="needs root"):
        box.run({}, "print('must not run')")


def test_fails_closed_when_the_jail_cannot_be_built() -> None:
    from rmguard.tamper.sandbox.jail import JailUnavailable

    # a tmpfs size the kernel rejects makes the mount fail before any code could run
    with Jail(JailLimits(disk_bytes=-1)) as box, pytest.raises(JailUnavailable, match="refusing"):
        box.run({}, "print('must not run')")


@pytest.mark.parametrize("name", ["n" * 300, "a\0b", "a\ud800b", "../outside"])
def test_files_the_kernel_refuses_fail_the_job_not_the_jail(strict: Jail, name: str) -> None:
    result = strict.run({name: "x", "ok.txt": "y"}, "print('must not run')")
    assert result.outcome == "limit" and result.stdout == "" and "cannot write the file" in result.stderr
    assert strict.run({}, "print('still alive')").stdout == "still alive\n"


def test_deep_folders_and_lone_surrogates_are_materialised(strict: Jail) -> None:
    deep = "/".join(["a"] * 1100) + "/f.txt"
    code = f"print(open({deep!r}).read(), open('s.txt', 'rb').read())"
    result = strict.run({deep: "deep", "s.txt": "\ud800é"}, code)
    assert result.outcome == "ok" and result.stdout == "deep b'\\xed\\xa0\\x80\\xc3\\xa9'\n"


SYSCALL = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    number = {numbers!r}[name]
    result = libc.syscall(number, *args)
    return result, os.strerror(ctypes.get_errno()) if result == -1 else ""
"""


def _syscalls() -> str:
    column = 0 if os.uname().machine == "x86_64" else 1
    numbers = {name: pair[column] for name, pair in _jail.DENIED_SYSCALLS.items()}
    numbers.update(clone=_jail.CLONE[os.uname().machine], clone3=_jail.CLONE3)
    return SYSCALL.format(numbers=numbers)


@pytest.mark.parametrize(
    "name, args",
    [
        ("add_key", (b"user", b"job1", b"secret", 6, -3)),  # into the session keyring
        ("request_key", (b"user", b"job1", None, -4)),  # from the user keyring
        ("keyctl", (0, -4, 0)),  # KEYCTL_GET_KEYRING_ID of the user keyring
        ("ptrace", (0, 0, 0, 0)),  # PTRACE_TRACEME
        ("unshare", (0x10000000,)),  # a user namespace
        ("setns", (0, 0)),
        ("mount", (b"none", b"/sandbox", b"tmpfs", 0, None)),
        ("bpf", (0, None, 0)),
        ("perf_event_open", (None, 0, -1, -1, 0)),
        ("io_uring_setup", (1, None)),
        ("clone", (0x10000000 | 17, 0, 0, 0, 0)),  # fork into a new user namespace
    ],
)
def test_seccomp_refuses_calls_against_the_host_with_eperm(strict: Jail, name: str, args: tuple) -> None:
    result = strict.run({}, _syscalls() + f"print(call({name!r}, *{args!r}))")
    assert result.outcome == "ok" and result.stdout == "(-1, 'Operation not permitted')\n"


def test_ordinary_python_still_runs_under_the_filter(strict: Jail) -> None:
    code = _syscalls() + (
        "import json, threading\n"
        "print(call('clone3', None, 0))\n"  # ENOSYS: libc falls back to clone, whose flags the filter reads
        "out = []\n"
        "thread = threading.Thread(target=out.append, args=(json.dumps({'a': 1}),)); thread.start(); thread.join()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n    os._exit(7)\n"
        "print(out[0], os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
    )
    result = strict.run({}, code)
    assert result.outcome == "ok" and result.stdout == "(-1, 'Function not implemented')\n{\"a\": 1} 7\n"


def test_the_filter_table_matches_the_kernel_headers() -> None:
    headers = {0: "/usr/include/x86_64-linux-gnu/asm/unistd_64.h", 1: "/usr/include/asm-generic/unistd.h"}
    checked = 0
    for column, header in headers.items():
        if not os.path.exists(header):
            continue
        text = Path(header).read_text()
        defined = dict(re.findall(r"^#define __NR_(\w+)\s+(\d+)$", text, flags=re.MULTILINE))
        for name, numbers in {**_jail.DENIED_SYSCALLS, "clone3": (435, 435)}.items():
            assert int(defined[name]) == numbers[column], name
        assert int(defined["clone"]) == list(_jail.CLONE.values())[column]
        checked += 1
    if not checked:
        pytest.skip("no kernel headers on this host")


def test_job_memory_is_capped_as_a_whole_not_per_process() -> None:
    # 16 children that each allocate all they can, holding it until every one has reported
    code = """
import os
report_r, report_w = os.pipe()
hold_r, hold_w = os.pipe()
forked = 0
for _ in range(16):
    try:
        pid = os.fork()
    except OSError:
        continue
    if pid == 0:
        held, total = [], 0
        try:
            while True:
                held.append(bytearray(4 << 20))
                total += 4 << 20
        except MemoryError:
            pass
        os.write(report_w, b"%d\\n" % total)
        os.read(hold_r, 1)
        os._exit(0)
    forked += 1
os.close(report_w)
totals = [int(line) for line in os.fdopen(report_r).read(0) or []]
"""
    code = code.replace(
        "totals = [int(line) for line in os.fdopen(report_r).read(0) or []]",
        "reader = os.fdopen(report_r)\n"
        "totals = [int(reader.readline()) for _ in range(forked)]\n"
        "print(forked, sum(totals), min(totals))",
    )
    limits = JailLimits(timeout_seconds=10, memory_bytes=256 << 20, max_processes=4)
    with Jail(limits) as box:
        result = box.run({}, code)
    assert result.outcome == "ok", result.stderr
    forked, total, smallest = map(int, result.stdout.split())
    assert forked <= limits.max_processes - 1  # the job's own user: RLIMIT_NPROC counts only this job
    assert smallest > 0 and total <= limits.memory_bytes  # unbounded, 16 x 256 MB would have been reached
    assert result.memory_cap  # how it was capped, and why when degraded
    if "degraded" in result.memory_cap:
        assert "cgroup" in result.memory_cap


def test_a_worker_that_dies_in_setup_fails_the_jail_closed() -> None:
    from rmguard.tamper.sandbox.jail import JailUnavailable

    # a process limit setrlimit refuses: the worker dies before any job code could run
    with Jail(JailLimits(max_processes=-5)) as box, pytest.raises(JailUnavailable, match="refusing"):
        box.run({}, "print('must not run')")


def test_running_out_of_cpu_is_a_timeout_even_when_sigxcpu_is_ignored() -> None:
    code = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True: pass"
    with Jail(JailLimits(timeout_seconds=15, cpu_seconds=1)) as box:
        result = box.run({}, code)  # the kernel's SIGKILL at the hard limit, before the wall clock
        assert (result.outcome, result.signal) == ("timeout", 9)
        crash = box.run({}, "import ctypes; ctypes.string_at(0)")
        assert (crash.outcome, crash.signal) == ("killed", 11)  # another signal stays "killed"


def test_a_key_stored_by_one_job_is_out_of_reach_of_the_next(strict: Jail) -> None:
    # the case: job 1 stored a key in the user keyring, job 2 read it
    store = strict.run({}, _syscalls() + "print(call('add_key', b'user', b'job1', b'secret', 6, -4))")
    search = strict.run(
        {}, _syscalls() + "print(call('keyctl', 10, -4, b'user', b'job1', 0))"
    )  # KEYCTL_SEARCH
    assert store.stdout == search.stdout == "(-1, 'Operation not permitted')\n"


def _fake_cgroup_host(tmp_path: Path, controllers: str) -> tuple[str, Path]:
    """A /proc/self and a cgroup v2 tree as regular files: this process in cgroup /session.scope."""
    proc, tree = tmp_path / "proc", tmp_path / "cgroup"
    (tree / "session.scope").mkdir(parents=True)
    proc.mkdir()
    (proc / "mountinfo").write_text(f"41 31 0:38 / {tree} rw,relatime - cgroup2 cgroup2 rw\n")
    (proc / "cgroup").write_text("0::/session.scope\n")
    (tree / "session.scope" / "cgroup.controllers").write_text(controllers)
    (tree / "session.scope" / "cgroup.subtree_control").write_text("")
    return str(proc), tree


def test_job_cgroups_are_made_below_the_servers_own_cgroup(tmp_path) -> None:
    proc, tree = _fake_cgroup_host(tmp_path, "cpu memory pids\n")
    folder, reason = _jail.job_cgroups(proc)
    assert (folder, reason) == (f"{tree}/session.scope/rmguard-jail-{os.getpid()}", "")
    assert (tree / "session.scope" / "cgroup.subtree_control").read_text() == "+memory"
    assert Path(folder, "cgroup.subtree_control").read_text() == "+memory"
    host = {"cgroups": folder, "cgroup_reason": "", "own_ids": True}
    job = {"memory_bytes": 512 << 20, "max_processes": 8}
    assert _jail.memory_plan(host, job) == (
        512 << 20,
        f"cgroup v2 memory.max of {512 << 20} bytes for the job",
    )
    path = _jail.make_job_cgroup(host, job)
    assert Path(path, "memory.max").read_text() == str(512 << 20)


def test_without_a_memory_controller_the_cap_is_split_over_processes_and_says_why(tmp_path) -> None:
    proc, tree = _fake_cgroup_host(tmp_path, "cpu pids\n")
    folder, reason = _jail.job_cgroups(proc)
    assert (
        folder is None
        and reason == f"the cgroup v2 hierarchy at {tree}/session.scope has no memory controller"
    )
    host = {"cgroups": None, "cgroup_reason": reason, "own_ids": False}
    share, cap = _jail.memory_plan(host, {"memory_bytes": 512 << 20, "max_processes": 8})
    assert share == 64 << 20 and reason in cap and "share user nobody's process count" in cap
