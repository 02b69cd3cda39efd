"""Sample one of the shipped response pools again, exactly as it was made.

    python scripts/make_pool.py bon512 [--work-dir runs/pool-bon512] [--output FILE]

NAME is a key of ``rmguard.overopt.study.pool.SHIPPED_POOLS``; its ``PoolConfig`` (policy, prompts, styles,
Best-of-N samples, seed, and the shipped pool it extends) says what is sampled. The work folder keeps every
finished generation batch, so an interrupted run resumes where it stopped; the pool is written atomically to
``--output`` (default: the packaged resource the study reads). Sampling on CPU is deterministic for the same
torch build: the same command gives the same samples. On a CPU that other jobs share, ``OMP_NUM_THREADS=1``
can be many times faster than torch's default of one thread per core (its threads wait on each other).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    from rmguard.cli.progress import stage_progress
    from rmguard.errors import RMGuardError
    from rmguard.fileio import check_outputs, output_lock
    from rmguard.overopt.study.pool import SHIPPED_POOLS, generate_world_pool, write_pool

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=SHIPPED_POOLS.choices(), help="which shipped pool to sample")
    parser.add_argument("--work-dir", default=None, help="resumable work folder (default runs/pool-NAME)")
    parser.add_argument("--output", default=None, help="where the pool goes (default: the packaged resource)")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")
    args = parser.parse_args()
    resource, config = SHIPPED_POOLS[args.name]
    output = Path(args.output or REPO / "src" / "rmguard" / resource)
    work = Path(args.work_dir or f"runs/pool-{args.name}")
    try:
        check_outputs([output], [])
        with output_lock(work), stage_progress(args.no_progress) as update:
            pool = generate_world_pool(config, work, update)
            write_pool(pool, output)
    except RMGuardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"pool: {output} ({len(pool['prompts'])} prompts, {len(pool['bon']['prompts'])} Best-of-N prompts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
