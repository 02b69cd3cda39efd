"""Fork server that runs untrusted Python in a throw-away jail. Standalone: stdlib only, no rmguard.

The host starts this script once (``python -I -S _jail.py JAILDIR``, empty environment) and sends jobs as
length-prefixed JSON on stdin. For every job it forks a supervisor which enters fresh mount, network, PID,
IPC and UTS namespaces, mounts a size-limited tmpfs as the new root, binds the Python installation and
/usr read-only, writes the job's files into /sandbox and forks the worker. The worker chroots, applies
resource limits, drops to nobody with no supplementary groups and no_new_privs, and executes the job's
code. Forking a warm interpreter instead of starting one per job is what makes ~100 jobs/s possible.

Besides stdout and stderr the worker gets one more pipe, as file descriptor 3: the *result channel*. A
trusted harness run as the job's code writes its verdict there, after closing the descriptor in every
process it forks to run model-written code, so the model's output only ever reaches stdout and stderr.
"""

import contextlib  # noqa: F401  (imported once here so every forked worker starts with it warm)
import ctypes
import importlib.util  # noqa: F401  (same: the reward-tampering harness loads modules from files)
import io  # noqa: F401
import json
import math  # noqa: F401
import os
import resource
import select
import signal
import struct
import sys
import time
import traceback

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
NOBODY = 65534

libc = ctypes.CDLL(None, use_errno=True)


def check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source, target, fstype, flags, data=None):
    encode = lambda s: s.encode() if s is not None else None  # noqa: E731
    check(libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}")


def read_message(stream):
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    return json.loads(stream.read(size))


def write_message(stream, message):
    data = json.dumps(message).encode()
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def build_root(root, job):
    """Inside the new mount namespace: tmpfs root, read-only system binds, the job's files."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={job['disk_bytes']},mode=755")
    for source in job["binds"]:
        if os.path.islink(source):
            os.symlink(os.readlink(source), root + source)
            continue
        if not os.path.isdir(source):
            continue
        target = root + source
        os.makedirs(target, exist_ok=True)
        mount(source, target, None, MS_BIND | MS_REC)
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    jail = root + "/sandbox"
    os.mkdir(jail)
    os.chown(jail, NOBODY, NOBODY)
    write_files(jail, job["files"], NOBODY)


class JobFilesError(Exception):
    """The job's own files cannot be written (a name or a size the kernel refuses): the job's failure."""


def write_files(jail, files, owner):
    """Write ``files`` (relative path -> text) under ``jail``, owned by ``owner``; folders made iteratively.

    Text is written as UTF-8 with lone surrogates passed through, as the host's virtual filesystem counts
    it. A name the kernel refuses (too long, NUL, not encodable) or a full disk fails this job only.
    """
    for relative, content in files.items():
        try:
            path = os.path.normpath(os.path.join(jail, relative))
            if not path.startswith(jail + "/"):
                raise ValueError("outside the sandbox")
            make_dirs(jail, os.path.dirname(path), owner)
            with open(path, "wb") as handle:
                handle.write(content.encode("utf-8", "surrogatepass"))
            os.chown(path, owner, owner)
        except (OSError, ValueError) as error:
            raise JobFilesError(f"cannot write the file {relative[:300]!r}: {error}") from None


def make_dirs(jail, directory, owner):
    """Create ``directory`` and its missing parents below ``jail``, iteratively (any depth)."""
    missing = []
    while directory != jail and not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for folder in reversed(missing):
        os.mkdir(folder)
        os.chown(folder, owner, owner)


RESULT_FD = 3


def become_worker(root, job, out_w, err_w, res_w):
    """Runs in PID 1 of the new PID namespace; never returns."""
    try:
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        os.chroot(root)
        os.chdir("/sandbox")
        stdin_r, stdin_w = os.pipe()
        os.close(stdin_w)
        os.dup2(stdin_r, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(res_w, RESULT_FD)
        os.closerange(RESULT_FD + 1, 1 << 16)
        limits = {
            resource.RLIMIT_AS: job["memory_bytes"],
            resource.RLIMIT_NPROC: job["max_processes"],
            resource.RLIMIT_FSIZE: job["file_bytes"],
            resource.RLIMIT_NOFILE: 64,
            resource.RLIMIT_CORE: 0,
        }
        for kind, value in limits.items():
            resource.setrlimit(kind, (value, value))
        # soft < hard so that running out of CPU time raises SIGXCPU (reported as a timeout), not SIGKILL
        resource.setrlimit(resource.RLIMIT_CPU, (job["cpu_seconds"], job["cpu_seconds"] + 1))
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        os.environ.clear()
        sys.argv = ["sandbox"]
        # The worker ends with os._exit, so these wrappers of fds 1 and 2 live exactly as long as it does.
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversized writes fail with EFBIG instead of killing
        exec(compile(job["code"], "<jail-harness>", "exec"), {"__name__": "__main__"})
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        os._exit(code)
    except BaseException:
        try:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(1)


def collect(pid, out_r, err_r, res_r, job):
    """Read the worker's output and result channel up to the cap until it exits or the deadline passes."""
    deadline = time.monotonic() + job["timeout_seconds"]
    buffers = {out_r: bytearray(), err_r: bytearray(), res_r: bytearray()}
    truncated, timed_out, open_fds = False, False, [out_r, err_r, res_r]
    while open_fds:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select(open_fds, [], [], remaining)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.remove(fd)
                continue
            room = job["output_bytes"] - len(buffers[fd])
            truncated = truncated or (len(chunk) > room and fd != res_r)
            buffers[fd] += chunk[: max(room, 0)]
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return {
        "stdout": buffers[out_r].decode("utf-8", "replace"),
        "stderr": buffers[err_r].decode("utf-8", "replace"),
        "result": buffers[res_r].decode("utf-8", "replace"),
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "timed_out": timed_out,
        "truncated": truncated,
    }


def supervise(root, job, result_w):
    """The supervisor process: new namespaces, jail setup, one worker, a result on ``result_w``."""
    try:
        check(
            libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS), "unshare"
        )
        build_root(root, job)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            for fd in (out_r, err_r, res_r):
                os.close(fd)
            become_worker(root, job, out_w, err_w, res_w)
        for fd in (out_w, err_w, res_w):
            os.close(fd)
        result = collect(pid, out_r, err_r, res_r, job)
    except JobFilesError as error:  # this job's files, not the jail, are at fault: the job fails alone
        result = {"files_error": str(error)}
    except BaseException as error:  # the jail could not be built: report it, never run the code
        result = {"setup_error": f"{type(error).__name__}: {error}"}
    os.write(result_w, json.dumps(result).encode())
    os._exit(0)


def serve(root):
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    while True:
        job = read_message(requests)
        if job is None:
            return
        result_r, result_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(result_r)
            supervise(root, job, result_w)
        os.close(result_w)
        chunks = []
        while chunk := os.read(result_r, 1 << 20):
            chunks.append(chunk)
        os.close(result_r)
        os.waitpid(pid, 0)
        raw = b"".join(chunks)
        write_message(replies, json.loads(raw) if raw else {"setup_error": "supervisor died"})


if __name__ == "__main__":
    serve(sys.argv[1])
