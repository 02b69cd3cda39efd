"""``rmguard serve``: a reward model behind HTTP for RL frameworks.

``requests.py`` turns JSON payloads into items to score (pure); ``batcher.py`` scores the items of
concurrent requests together on one worker thread; ``app.py`` is the Starlette application and the
uvicorn runner. Endpoints and limits are documented in docs/serve.md.
"""
