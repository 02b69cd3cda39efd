"""Model-written code runs isolated: no host files, no network, bounded CPU, memory, processes, output."""

from __future__ import annotations

import pytest

from rmguard.tamper.jail import Jail, JailLimits


@pytest.fixture(scope="module")
def strict():
    with Jail(JailLimits(timeout_seconds=1.5, cpu_seconds=1, output_bytes=4096)) as box:
        yield box


def test_code_sees_only_its_files_as_nobody(strict: Jail) -> None:
    code = "import os; print(open('data.txt').read(), os.getuid(), os.getcwd(), dict(os.environ))"
    result = strict.run({"data.txt": "hello"}, code)
    assert result.outcome == "ok"
    assert result.stdout.split() == ["hello", "65534", "/sandbox", "{}"]


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
    from rmguard.tamper.jail import JailUnavailable

    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with Jail() as box, pytest.raises(JailUnavailable, match="needs root"):
        box.run({}, "print('must not run')")


def test_fails_closed_when_the_jail_cannot_be_built() -> None:
    from rmguard.tamper.jail import JailUnavailable

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
