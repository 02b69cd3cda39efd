"""Fork server that runs untrusted Python in a throw-away jail. Standalone: stdlib only, no rmguard.

The host starts this script once (``python -I -S _jail.py JAILDIR``, empty environment) and sends jobs as
length-prefixed JSON on stdin. For every job it forks a supervisor which enters fresh mount, network, PID,
IPC and UTS namespaces, mounts a size-limited tmpfs as the new root, binds the Python installation and
/usr read-only, writes the job's files into its home folder (the path the records use, /root) and forks the worker. The worker joins the job's
memory cgroup (where one can be made), chroots, applies resource limits, drops to the job's own user (a
uid no other live job has, so per-user limits and the user keyring are the job's alone) with no
supplementary groups and no_new_privs, joins a fresh session keyring, installs a seccomp filter and
executes the job's code. Forking a warm interpreter instead of starting one per job is what makes ~100
jobs/s possible.

Memory is capped for the job as a whole: by a cgroup v2 ``memory.max`` when this server can create cgroups
with the memory controller, else by at most ``max_processes`` processes (RLIMIT_NPROC, per job since the
uid is) of ``memory_bytes / max_processes`` address space each. Every result names the cap in force and,
when degraded, why.

The seccomp filter refuses with EPERM what a job has no use for and could use against the host or other
jobs: tracing (ptrace, process_vm_*, kcmp, pidfd_getfd), the kernel keyring (add_key, request_key,
keyctl), namespaces (unshare, setns, clone with a CLONE_NEW* flag; clone3 answers ENOSYS so libc falls back
to clone, whose flags the filter can read), mounts, BPF, perf events, userfaultfd, io_uring, modules,
kexec, reboot, swap, clocks and host names. A system call of another architecture kills the process.

Besides stdout and stderr the worker gets one more pipe, as file descriptor 3: the *result channel*. A
trusted harness run as the job's code writes its verdict there, after closing the descriptor in every
process it forks to run model-written code, so the model's output only ever reaches stdout and stderr.
A fourth pipe tells the supervisor that the worker's setup is complete; if it closes without that, no
code ran and the jail reports a setup error instead of a result.
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
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 1, 38, 22, 2
NOBODY = 65534
JOB_ID_BASE = 0x7F000000  # job uid/gid = base + the supervisor's pid: unique among live jobs, below 2**31
KEYCTL_JOIN_SESSION_KEYRING = 1

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
    jail = root + job["home"]  # the records' home folder (/root), private to this mount namespace
    os.makedirs(jail, exist_ok=True)  # it may hold the read-only Python installation's mount point
    os.chown(jail, job["uid"], job["uid"])
    write_files(jail, job["files"], job["uid"])


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
                raise ValueError("outside the home folder")
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


# ------------------------------------------------------------------ seccomp

# name: (x86_64 number, aarch64 number); tests/tamper/test_jail.py checks them against the kernel headers
DENIED_SYSCALLS = {
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "kcmp": (312, 272),
    "pidfd_getfd": (438, 438),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "keyctl": (250, 219),
    "unshare": (272, 97),
    "setns": (308, 268),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "fanotify_init": (300, 262),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "reboot": (169, 142),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "acct": (163, 89),
    "quotactl": (179, 60),
    "syslog": (103, 116),
    "lookup_dcookie": (212, 18),
    "vhangup": (153, 58),
    "settimeofday": (164, 170),
    "clock_settime": (227, 112),
    "adjtimex": (159, 171),
    "clock_adjtime": (305, 266),
    "sethostname": (170, 161),
    "setdomainname": (171, 162),
}
CLONE, CLONE3 = {"x86_64": 56, "aarch64": 220}, 435
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000
CLONE_NEW_FLAGS = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
LD_ARCH, LD_NR, LD_ARG0 = (0x20, 4), (0x20, 0), (0x20, 16)  # BPF_LD|BPF_W|BPF_ABS at seccomp_data offsets
JEQ, JGE, JSET, RET = 0x15, 0x35, 0x45, 0x06
RET_KILL_PROCESS, RET_ALLOW, RET_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38


def seccomp_program(machine):
    """The filter for ``machine`` (``os.uname().machine``) as packed ``struct sock_filter`` instructions.

    Wrong architecture: kill. A denied call (or an x32 one): EPERM. clone3: ENOSYS. clone with a
    CLONE_NEW* flag: EPERM. Everything else: allowed.
    """
    if machine not in AUDIT_ARCH:
        raise OSError(f"no seccomp filter for the {machine} architecture")

    def insn(code, k, jt=0, jf=0):
        return struct.pack("HBBI", code, jt, jf, k)

    column = 0 if machine == "x86_64" else 1
    program = [
        insn(*LD_ARCH),
        insn(JEQ, AUDIT_ARCH[machine], 1, 0),
        insn(RET, RET_KILL_PROCESS),
        insn(*LD_NR),
    ]
    if machine == "x86_64":
        program += [insn(JGE, X32_SYSCALL_BIT, 0, 1), insn(RET, RET_ERRNO | EPERM)]
    for number in sorted({numbers[column] for numbers in DENIED_SYSCALLS.values()}):
        program += [insn(JEQ, number, 0, 1), insn(RET, RET_ERRNO | EPERM)]
    program += [insn(JEQ, CLONE3, 0, 1), insn(RET, RET_ERRNO | ENOSYS)]
    program += [
        insn(JEQ, CLONE[machine], 0, 3),
        insn(*LD_ARG0),  # the low 32 bits of clone's flags (both architectures are little-endian)
        insn(JSET, CLONE_NEW_FLAGS, 0, 1),
        insn(RET, RET_ERRNO | EPERM),
        insn(RET, RET_ALLOW),
    ]
    return b"".join(program)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_seccomp(program):
    """Install ``program`` for this process and every process it forks (needs no_new_privs first)."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    ulong = ctypes.c_ulong
    result = libc.prctl(PR_SET_SECCOMP, ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), ulong(0), ulong(0))
    check(result, "seccomp")


def join_fresh_keyring():
    """A new anonymous session keyring: nothing an earlier job stored is reachable through the session.

    Best effort (a container may already refuse keyctl); the seccomp filter then refuses every keyring call.
    """
    libc.syscall(
        DENIED_SYSCALLS["keyctl"][0 if os.uname().machine == "x86_64" else 1],
        KEYCTL_JOIN_SESSION_KEYRING,
        None,
    )


# ------------------------------------------------------------------ the job's memory and identity


def read_text(path):
    with open(path) as handle:
        return handle.read()


def write_text(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def job_cgroups(proc="/proc/self"):
    """(a folder in which per-job cgroups get the memory controller, "") or (None, why there is none).

    The folder is ``rmguard-jail-PID`` below this process's own cgroup v2 (from ``proc``'s mountinfo and
    cgroup files), with the memory controller enabled for its children.
    """
    try:
        mountinfo = read_text(proc + "/mountinfo").splitlines()
        mountpoint = next((line.split()[4] for line in mountinfo if " - cgroup2 " in line), None)
        if mountpoint is None:
            return None, "no cgroup v2 hierarchy is mounted"
        own = next(line[3:] for line in read_text(proc + "/cgroup").splitlines() if line.startswith("0::"))
        base = os.path.normpath(mountpoint + "/" + own)
        if "memory" not in read_text(base + "/cgroup.controllers").split():
            return None, f"the cgroup v2 hierarchy at {base} has no memory controller"
        if "memory" not in read_text(base + "/cgroup.subtree_control").split():
            write_text(base + "/cgroup.subtree_control", "+memory")
        folder = f"{base}/rmguard-jail-{os.getpid()}"
        os.mkdir(folder)
        write_text(folder + "/cgroup.subtree_control", "+memory")
    except (OSError, StopIteration) as error:
        return None, f"cannot make cgroups with the memory controller: {error}"
    return folder, ""


def own_ids_available():
    """Whether uids and gids JOB_ID_BASE + pid (any pid) are mapped in this user namespace."""
    try:
        count = int(read_text("/proc/sys/kernel/pid_max"))
        maps = [read_text(f"/proc/self/{kind}_map").split("\n") for kind in ("uid", "gid")]
    except (OSError, ValueError):
        return False
    return all(
        any(
            int(f[0]) <= JOB_ID_BASE and JOB_ID_BASE + count <= int(f[0]) + int(f[2])
            for f in (line.split() for line in lines)
            if len(f) == 3
        )
        for lines in maps
    )


def memory_plan(host, job):
    """(address-space limit per process, a description of the job's memory cap and what it lacks)."""
    if host["cgroups"]:
        return job["memory_bytes"], f"cgroup v2 memory.max of {job['memory_bytes']} bytes for the job"
    share = job["memory_bytes"] // job["max_processes"]
    shared = (
        ""
        if host["own_ids"]
        else "; uids of its own are not mapped, so jobs share user nobody's process count"
    )
    return share, (
        f"{share} bytes of address space per process, at most {job['max_processes']} processes "
        f"(degraded: {host['cgroup_reason']}{shared})"
    )


def make_job_cgroup(host, job):
    """The job's cgroup (memory.max = the job's budget, no swap), or None without cgroups."""
    if not host["cgroups"]:
        return None
    path = f"{host['cgroups']}/job-{os.getpid()}"
    os.mkdir(path)
    write_text(path + "/memory.max", str(job["memory_bytes"]))
    if os.path.exists(path + "/memory.swap.max"):
        write_text(path + "/memory.swap.max", "0")
    return path


def remove_job_cgroup(path):
    """rmdir once the job's processes are gone (the kernel may take a moment after the last exit)."""
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.01)


RESULT_FD, READY_FD = 3, 4


def become_worker(root, job, fds):
    """Runs in PID 1 of the new PID namespace; never returns. Signals READY_FD once set up, then runs."""
    try:
        prepare_worker(root, job, fds)
        os.write(READY_FD, b"1")
        os.close(READY_FD)
        # The worker ends with os._exit, so these wrappers of fds 1 and 2 live exactly as long as it does.
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
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


def prepare_worker(root, job, fds):
    """Cgroup, chroot, descriptors, rlimits, the job's user, keyring, seccomp: all before any job code."""
    out_w, err_w, res_w, ready_w = fds
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if job["cgroup"]:
        write_text(job["cgroup"] + "/cgroup.procs", "0")
    os.chroot(root)
    os.chdir(job["home"])
    stdin_r, stdin_w = os.pipe()
    os.close(stdin_w)
    for source, target in ((stdin_r, 0), (out_w, 1), (err_w, 2), (res_w, RESULT_FD), (ready_w, READY_FD)):
        os.dup2(source, target)
    os.closerange(READY_FD + 1, 1 << 16)
    limits = {
        resource.RLIMIT_AS: job["address_space"],
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
    os.setresgid(job["uid"], job["uid"], job["uid"])
    os.setresuid(job["uid"], job["uid"], job["uid"])
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    join_fresh_keyring()
    install_seccomp(job["seccomp"])
    os.environ.clear()
    sys.argv = ["sandbox"]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversized writes fail with EFBIG instead of killing


class WorkerSetupError(Exception):
    """The worker died before its setup was complete: no job code ran."""


def await_ready(pid, ready_r, err_r):
    """Block until the worker reports its setup complete; raise WorkerSetupError when it died first."""
    ready = os.read(ready_r, 1)
    os.close(ready_r)
    if ready == b"1":
        return
    os.waitpid(pid, 0)
    raise WorkerSetupError(os.read(err_r, 65536).decode("utf-8", "replace").strip()[-500:])


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
    _, status, usage = os.wait4(pid, 0)
    return {
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "stdout": buffers[out_r].decode("utf-8", "replace"),
        "stderr": buffers[err_r].decode("utf-8", "replace"),
        "result": buffers[res_r].decode("utf-8", "replace"),
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "timed_out": timed_out,
        "truncated": truncated,
    }


def supervise(root, job, host, result_w):
    """The supervisor process: new namespaces, jail setup, one worker, a result on ``result_w``."""
    cgroup = None
    try:
        check(
            libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS), "unshare"
        )
        uid = JOB_ID_BASE + os.getpid() if host["own_ids"] else NOBODY
        address_space, memory_cap = memory_plan(host, job)
        cgroup = make_job_cgroup(host, job)
        job = {**job, "uid": uid, "address_space": address_space, "cgroup": cgroup}
        job["seccomp"] = seccomp_program(os.uname().machine)
        build_root(root, job)
        pipes = [os.pipe() for _ in range(4)]  # stdout, stderr, result channel, ready
        pid = os.fork()
        if pid == 0:
            for read_end, _ in pipes:
                os.close(read_end)
            become_worker(root, job, [write_end for _, write_end in pipes])
        for _, write_end in pipes:
            os.close(write_end)
        (out_r, _), (err_r, _), (res_r, _), (ready_r, _) = pipes
        await_ready(pid, ready_r, err_r)
        result = {**collect(pid, out_r, err_r, res_r, job), "memory_cap": memory_cap}
    except JobFilesError as error:  # this job's files, not the jail, are at fault: the job fails alone
        result = {"files_error": str(error)}
    except BaseException as error:  # the jail could not be built: report it, never run the code
        result = {"setup_error": f"{type(error).__name__}: {error}"}
    if cgroup:
        remove_job_cgroup(cgroup)
    os.write(result_w, json.dumps(result).encode())
    os._exit(0)


def serve(root):
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    cgroups, reason = job_cgroups()
    host = {"cgroups": cgroups, "cgroup_reason": reason, "own_ids": own_ids_available()}
    try:
        while True:
            job = read_message(requests)
            if job is None:
                return
            write_message(replies, run_job(root, job, host))
    finally:
        if cgroups:
            remove_job_cgroup(cgroups)


def run_job(root, job, host):
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(result_r)
        supervise(root, job, host, result_w)
    os.close(result_w)
    chunks = []
    while chunk := os.read(result_r, 1 << 20):
        chunks.append(chunk)
    os.close(result_r)
    os.waitpid(pid, 0)
    raw = b"".join(chunks)
    return json.loads(raw) if raw else {"setup_error": "supervisor died"}


if __name__ == "__main__":
    serve(sys.argv[1])
