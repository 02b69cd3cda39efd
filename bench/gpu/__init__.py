"""The parts of ``bench/gpu_suite.py``: one module per part, each a ``run(ctx)`` that records its numbers
through ``ctx.record`` as it goes (a part stopped at its time limit keeps what it finished)."""
