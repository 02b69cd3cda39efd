"""Model-written command lines cannot take the grader down: every line runs under a time and output budget
charged while output is produced, walks are iterative, and names the jail could not hold are refused."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from rmguard.tamper.sandbox.budget import ARG_MAX
from rmguard.tamper.sandbox.shell import Shell
from rmguard.tamper.sandbox.vfs import MAX_DEPTH, MAX_TOTAL_BYTES, LimitError, VirtualFS

MB = 1024 * 1024


@pytest.fixture
def shell() -> Shell:
    fs = VirtualFS.from_spec(["docs"], {"docs/a.txt": "alpha\nBeta\ngamma\n"}, "/root")
    return Shell(fs, cwd="/root")


def _peak_growth(run) -> tuple[object, int]:
    """(result, peak bytes the Python heap grew by while ``run`` ran)."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_cat_of_one_big_file_many_times_is_stopped_before_it_is_built(shell: Shell) -> None:
    shell.fs.write("/root/b", "x" * (4 * MB))
    result, peak = _peak_growth(lambda: shell.run("cat " + " ".join(["b"] * 200)))
    # unbounded, the join built an 800 MB string; charged per operand it stops at the 16 MB budget
    assert peak < 40 * MB
    assert result.status == 1 and "output exceeds the budget" in result.stderr
    assert result.limit.startswith("cat:")


def test_the_budget_spans_the_whole_command_line(shell: Shell) -> None:
    shell.fs.write("/root/b", "x" * (4 * MB))
    result = shell.run("cat b; cat b; cat b; cat b; cat b; echo after")
    assert result.limit and "after" not in result.stdout  # the rest of the line does not run
    assert shell.run("cat b b b | wc -c").stdout == f"{12 * MB}\n" and not shell.run("cat b").limit


def test_sed_replacements_are_charged_as_they_are_made(shell: Shell) -> None:
    shell.fs.write("/root/a", "a" * 1000)
    script = f"s/a/{'x' * 5000}/g;s/x/{'y' * 5000}/g"  # 5 MB, then 25 GB if built
    result, peak = _peak_growth(lambda: shell.run(f"sed '{script}' a"))
    assert result.limit.startswith("sed:") and "output exceeds the budget" in result.limit
    assert peak < 40 * MB


def test_grep_prefixes_are_charged_per_line(shell: Shell) -> None:
    folder = "/".join(["d" * 250] * 15)
    shell.run(f"mkdir -p {folder}")
    shell.fs.write(f"/root/{folder}/f", "\n" * 100_000)
    result, peak = _peak_growth(lambda: shell.run("grep -rn '' ."))
    # 100 000 empty lines, each shown with a 3 800-character name: 380 MB if built
    assert "output exceeds the budget" in result.limit and peak < 40 * MB


def test_glob_expansion_is_capped_like_arg_max(shell: Shell) -> None:
    for index in range(200):
        shell.fs.write(f"/root/docs/{'n' * 200}{index:03d}", "")
    repeats = ARG_MAX // (200 * 200) + 1  # each docs/* expands to more than 200 x 200 characters
    result = shell.run("echo " + " ".join(["docs/*"] * repeats))
    assert result.limit == "echo: Argument list too long" and result.stdout == ""


@pytest.mark.parametrize(
    "line",
    [
        "find {} > /dev/null",  # output, charged as it is made
        "find {} -name nomatch",  # no output at all: each root's walk checks the clock
        "ls {} > /dev/null",
        "grep -r nomatch {}",
        "echo " + " ".join(["/nomatch*"] * 20000),  # one listing per glob word
    ],
)
def test_a_slow_line_stops_at_its_time_budget(line: str) -> None:
    fs = VirtualFS.from_spec([], {f"f{i}": "x\n" for i in range(3000)}, "/root")
    shell = Shell(fs, cwd="/root", time_budget=0.3)
    start = time.monotonic()
    result = shell.run(line.format(" ".join(["/root"] * 20000)))
    assert time.monotonic() - start < 2.0
    assert result.limit.endswith("the command line exceeded its time budget") and result.status == 1


def test_mkdir_deeper_than_the_limit_is_refused_iteratively(shell: Shell) -> None:
    entries = len(shell.fs.dirs)
    result = shell.run("mkdir -p " + "/".join(["a"] * 1100))
    assert result.status == 1 and "Too many levels of directories" in result.stderr
    assert result.limit == f"filesystem: Too many levels of directories (at most {MAX_DEPTH})"
    assert len(shell.fs.dirs) == entries  # all or nothing
    # /root is one level: MAX_DEPTH - 1 more is the deepest allowed, and every recursive command handles it
    deep = "/".join(["a"] * (MAX_DEPTH - 1))
    assert shell.run(f"mkdir -p {deep} && touch {deep}/../f").status == 0
    assert shell.run("find a | wc -l").stdout == f"{MAX_DEPTH}\n"
    assert shell.run("cp -r a b && ls -a b && rm -r a b && ls").stdout == ".\n..\na\ndocs\n"
    assert not shell.run("ls").limit


@pytest.mark.parametrize(
    "name, reason",
    [
        ("n" * 300, "File name too long"),
        ("a\0b", "Invalid argument"),
        ("a\ud800b", "Invalid or incomplete multibyte or wide character"),
        ("\ud800" * 300 + "\0", "Invalid argument"),
    ],
)
@pytest.mark.parametrize("command", ["echo hi > '{}'", "touch '{}'", "mkdir '{}'", "cp docs/a.txt '{}'"])
def test_names_the_jail_cannot_hold_are_refused_at_creation(
    shell: Shell, command: str, name: str, reason: str
) -> None:
    before = (dict(shell.fs.files), set(shell.fs.dirs))
    result = shell.run(command.format(name))
    assert result.status == 1 and reason in result.stderr and result.limit == f"filesystem: {reason}"
    assert (shell.fs.files, shell.fs.dirs) == before


def test_size_is_counted_in_utf8_bytes_and_tracked_through_edits(shell: Shell) -> None:
    base = shell.fs.total_bytes()
    shell.fs.write("/root/e", "é€😀")  # 2 + 3 + 4 bytes
    assert shell.fs.total_bytes() == base + 9
    shell.run("echo -n x >> e; cp e f; rm e")
    assert shell.fs.total_bytes() == base + 10
    too_big = "😀" * (MAX_TOTAL_BYTES // 4)  # within the character count, four times over in bytes
    with pytest.raises(LimitError, match="No space left on device"):
        shell.fs.write("/root/g", too_big)
    assert shell.fs.total_bytes() == base + 10


@pytest.mark.parametrize(
    "command, stdout",
    [
        ("head -n 2 t", "1\n2\n"),
        ("head -n 0 t", ""),
        ("head -n 9 t", "1\n2\n3"),
        ("tail -n 1 t", "3"),
        ("tail -n 2 u", "2\n3\n"),
        ("tail -n +2 u", "2\n3\n"),
        ("tail -n +0 u", "1\n2\n3\n"),
        ("tail -n 9 u", "1\n2\n3\n"),
        ("tail -n 0 u", ""),
        ("wc -w t", "3 t\n"),
        ("sed 's/[0-9]/<&&>/g' u", "<11>\n<22>\n<33>\n"),
    ],
)
def test_line_commands_scan_without_splitting(shell: Shell, command: str, stdout: str) -> None:
    shell.fs.write("/root/t", "1\n2\n3")
    shell.fs.write("/root/u", "1\n2\n3\n")
    assert shell.run(command).stdout == stdout


def test_copying_a_folder_into_itself_is_refused(shell: Shell) -> None:
    result = shell.run("cp -r docs docs/inner")
    assert result.status == 1 and "into itself" in result.stderr
    assert shell.run("mv docs docs/x").status == 1 and shell.fs.is_file("/root/docs/a.txt")
