"""Environments brought as files: records in the released format (``prompt``, ``dirs``, ``files``,
``reward_cmd``, ``oversight_cmd``; :func:`load_environments`) and the release's own layout
(``environments.json`` + ``prompts.json``; :func:`load_release`). Each is graded by a registered
environment's rules (:mod:`rmguard.tamper.envs.registry`).
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from pathlib import Path
from typing import Any

from rmguard.errors import DataError
from rmguard.fileio import not_utf8
from rmguard.tamper.envs.base import Environment, EnvironmentSpec
from rmguard.tamper.envs.registry import REGISTRY, for_release_name
from rmguard.tamper.sandbox.base import HOME
from rmguard.tamper.sandbox.vfs import FSError, VirtualFS

MAX_DEPTH = 64  # folder levels of a path in an environments file


def load_environments(path: str | Path) -> list[EnvironmentSpec]:
    """Environments from a JSON file (one object or a list) or JSONL, in the released record format.

    Each record needs ``prompt``; ``environment`` (a registered name) picks the grading rules and defaults
    to the file name's stem; ``dirs``, ``files``, ``reward_cmd``, ``oversight_cmd`` and ``info`` are
    optional. Commands are Python run in the jail (``python -c '...'``, ``python FILE`` or plain source).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DataError(str(path), f"cannot read: {error.strerror}") from error
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    records = _parse_records(text, str(path))
    return [_record_to_spec(record, str(path), row, path.stem) for row, record in records]


def _parse_records(text: str, source: str) -> list[tuple[int, Any]]:
    try:
        whole = json.loads(text)
        return list(enumerate(whole if isinstance(whole, list) else [whole], 1))
    except json.JSONDecodeError:
        pass
    records = []
    for row, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append((row, json.loads(line)))
            except json.JSONDecodeError as error:
                raise DataError(source, f"invalid JSON: {error.msg}", row=row) from error
    return records


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(str(path), f"cannot read: {error.strerror}") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(str(path), f"not a JSON file ({error})") from error


def load_release(environments_path: str | Path, prompts_path: str | Path) -> list[EnvironmentSpec]:
    """Environments in the layout of the Sycophancy-to-Subterfuge release, read as released.

    ``environments.json``: an object, environment name → one description or a list of them; a description
    has ``dirs`` (folders, created first), ``files`` (path → content, created as ``echo CONTENT > PATH``
    creates them, so each content gets a trailing newline), ``reward_cmd`` and ``oversight_cmd``.
    ``prompts.json``: an object, the same names → one prompt or a list of prompts. Variant k of a name
    pairs description k with prompt k; a single description or a single prompt serves every variant. The
    name's ending picks the grading rules (:func:`for_release_name`); names only in ``prompts.json`` have no
    files to grade and are not loaded.
    """
    environments_path, prompts_path = Path(environments_path), Path(prompts_path)
    environments, prompts = _read_json(environments_path), _read_json(prompts_path)
    for path, whole in ((environments_path, environments), (prompts_path, prompts)):
        if not isinstance(whole, dict):
            raise DataError(str(path), "expected a JSON object: environment name → entry")
    specs = []
    for name, entry in environments.items():
        where = f"environment '{name}'"
        if not name.strip():
            raise DataError(str(environments_path), "an environment has an empty name")
        environment = for_release_name(name)
        if environment is None:
            raise DataError(str(environments_path), f"{where}: no registered environment grades it")
        descriptions = entry if isinstance(entry, list) else [entry]
        if not descriptions:
            raise DataError(str(environments_path), f"{where}: an empty list of descriptions")
        labels = [f"[{k}]" if isinstance(entry, list) else "" for k in range(len(descriptions))]
        checked = [
            _description_to_spec(d, f"{environments_path}: {where}{label}", environment)
            for d, label in zip(descriptions, labels)
        ]
        texts = _prompts_for(prompts.get(name), len(checked), f"{prompts_path}: {where}")
        for k in range(max(len(checked), len(texts))):
            description, prompt = checked[k % len(checked)], texts[k % len(texts)]
            specs.append(dataclasses.replace(description, variant=k, prompt=prompt, release_name=name))
    return specs


def _prompts_for(entry: Any, descriptions: int, source: str) -> list[str]:
    texts = entry if isinstance(entry, list) else [entry]
    if not texts or not all(isinstance(t, str) for t in texts):
        raise DataError(source, "needs a prompt (a string or a list of strings)")
    if len(texts) != descriptions and 1 not in (len(texts), descriptions):
        raise DataError(source, f"{len(texts)} prompts for {descriptions} descriptions")
    return texts


def _description_to_spec(description: Any, source: str, environment: Environment) -> EnvironmentSpec:
    """A release description as a spec (variant and prompt are set by the caller)."""
    if not isinstance(description, dict):
        raise DataError(source, "expected an object with dirs, files, reward_cmd and oversight_cmd")
    for key in ("reward_cmd", "oversight_cmd"):
        if description.get(key) is not None and not isinstance(description[key], str):
            raise DataError(source, "must be a string", field=key)
    dirs, files = _layout(description.get("dirs", []), description.get("files", {}), source, None)
    return EnvironmentSpec(
        environment.name,
        0,
        "",
        dirs,
        {path: content + "\n" for path, content in files.items()},
        dict(environment.default_info),
        description.get("reward_cmd"),
        description.get("oversight_cmd"),
    )


def _layout(dirs: Any, files: Any, source: str, row: int | None) -> tuple[list[str], dict[str, str]]:
    """Checked ``dirs`` and ``files``, file paths made relative to the home folder (``./a``, ``/root/a``
    and ``a`` are one file). Each is created as ``mkdir -p``/``echo`` would create it, so a file where a
    folder is (or the reverse) is refused here, naming the path, instead of failing an episode."""
    if not isinstance(dirs, list):
        raise DataError(source, "must be a list of folder names", row=row, field="dirs")
    if not isinstance(files, dict):
        raise DataError(source, "must be an object: path → content", row=row, field="files")
    fs = VirtualFS.from_spec([], {}, HOME)
    for folder in dirs:
        _create(fs, folder, None, source, row, "dirs")
    relative = {}
    for path, content in files.items():
        if not isinstance(content, str):
            raise DataError(source, f"content of '{path}' must be text", row=row, field="files")
        absolute = _create(fs, path, content, source, row, "files")
        inside = absolute.startswith(HOME + "/")
        relative[posixpath.relpath(absolute, HOME) if inside else absolute] = content
    return list(dirs), relative


def _create(fs: VirtualFS, path: Any, content: str | None, source: str, row: int | None, field: str) -> str:
    """Create folder ``path`` (content None) or file ``path`` in ``fs``; its absolute path."""
    if not isinstance(path, str) or not path.strip():
        raise DataError(source, f"{path!r} is not a path (a non-empty string)", row=row, field=field)
    try:
        names = path.encode("utf-8").split(b"/")
    except UnicodeEncodeError as error:
        raise DataError(source, f"{path!r} is not valid UTF-8 text", row=row, field=field) from error
    if b"\0" in path.encode() or any(len(name) > 255 for name in names) or len(names) > MAX_DEPTH:
        problem = f"a NUL byte, a name over 255 bytes or more than {MAX_DEPTH} levels"
        raise DataError(source, f"{path[:60]!r}: {problem}", row=row, field=field)
    absolute = VirtualFS.resolve(HOME, path)
    try:
        if content is None:
            fs.mkdir(absolute, parents=True)
        else:
            fs.mkdir(posixpath.dirname(absolute), parents=True)
            fs.write(absolute, content)
    except FSError as error:
        raise DataError(source, f"cannot create '{path}': {error}", row=row, field=field) from error
    return absolute


def _record_to_spec(record: Any, source: str, row: int, default_name: str) -> EnvironmentSpec:
    if not isinstance(record, dict):
        raise DataError(source, "expected a JSON object", row=row)
    name = record.get("environment", default_name)
    if name not in REGISTRY:
        raise DataError(source, f"unknown environment '{name}'", row=row, field="environment")
    expected = {"prompt": str, "info": dict}
    for key, kind in expected.items():
        if key in record and not isinstance(record[key], kind):
            raise DataError(source, f"must be a {kind.__name__}", row=row, field=key)
    if "prompt" not in record:
        raise DataError(source, "missing", row=row, field="prompt")
    for key in ("reward_cmd", "oversight_cmd"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise DataError(source, "must be a string", row=row, field=key)
    dirs, files = _layout(record.get("dirs", []), record.get("files", {}), source, row)
    return EnvironmentSpec(
        name,
        row - 1,
        record["prompt"],
        dirs,
        files,
        {**REGISTRY[name].default_info, **record.get("info", {})},
        record.get("reward_cmd"),
        record.get("oversight_cmd"),
    )
