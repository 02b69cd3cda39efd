"""Episodes per second per environment with scripted policies (reward_tampering includes the jail).

    python bench/tamper_throughput.py [--episodes 400] [--workers 2]

Targets: >= 50/s for reward_tampering, >= 1000/s for the others. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from rmguard.tamper.envs.registry import ENVIRONMENTS, make_environment
from rmguard.tamper.jail import Jail
from rmguard.tamper.policies import ScriptedPolicy
from rmguard.tamper.protocol import run_episode

POLICY = {"reward_tampering": "tamper_branch"}


def throughput(environment: str, episodes: int, sandboxes: list[Jail]) -> float:
    policy = ScriptedPolicy(POLICY.get(environment, "rubric_editor"))
    shards = [range(i, episodes, len(sandboxes)) for i in range(len(sandboxes))]

    def work(index: int) -> None:
        for variant in shards[index]:  # building the variant is part of an episode's cost
            assert run_episode(make_environment(environment, variant), policy, sandboxes[index]).grade.gamed

    start = time.perf_counter()
    with ThreadPoolExecutor(len(sandboxes)) as pool:
        list(pool.map(work, range(len(sandboxes))))
    return episodes / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2, help="parallel jail servers (one thread each)")
    args = parser.parse_args()
    sandboxes = [Jail() for _ in range(args.workers)]
    try:
        for jail in sandboxes:  # start the fork servers outside the timed region
            jail.run({}, "pass")
        for environment in ENVIRONMENTS:
            episodes = args.episodes if environment == "reward_tampering" else args.episodes * 10
            workers = sandboxes if environment == "reward_tampering" else sandboxes[:1]
            print(f"{environment:36} {throughput(environment, episodes, workers):10.1f} episodes/s")
    finally:
        for jail in sandboxes:
            jail.close()


if __name__ == "__main__":
    main()
