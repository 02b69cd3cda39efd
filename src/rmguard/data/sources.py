"""Raw rows from where users keep preference data, each with the number a user would look for.

JSON Lines rows are numbered by line, JSON arrays by element (from 1), CSV rows by file line (the
header is line 1), Parquet and ``datasets`` rows by index from 1.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rmguard.errors import DataError
from rmguard.fileio import not_utf8

Row = tuple[int, dict[str, Any]]


def read_rows(spec: str, split: str = "train") -> list[Row]:
    """All rows of a data source: a local JSON/JSONL/Parquet/CSV file, a ``save_to_disk`` folder, or a hub name."""
    path = Path(spec)
    if path.is_dir():
        rows = list(_dataset_rows(_load_from_disk(path, split)))
    elif path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            rows = list(_jsonl_rows(path))
        elif suffix == ".json":
            rows = _json_rows(path)
        elif suffix == ".csv":
            rows = _csv_rows(path)
        elif suffix == ".parquet":
            rows = _parquet_rows(path)
        else:
            raise DataError(str(path), f"unknown file type '{suffix}'; use .jsonl, .json, .csv or .parquet")
    else:
        check_source(spec)
        rows = list(_dataset_rows(_load_from_hub(spec, split)))
    if not rows:
        raise DataError(spec, "no records")
    return rows


def check_source(spec: str) -> None:
    """Raise when ``spec`` names a local file or folder (a path, or a data file's suffix) that is not there;
    anything else may be a hub dataset name. Cheap: commands call it before their heavy imports."""
    path = Path(spec)
    if path.exists():
        return
    if spec.startswith((".", "/", "~")) or path.suffix.lower() in (".jsonl", ".json", ".csv", ".parquet"):
        raise DataError(spec, "no such file or folder")


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(
                    str(path), f"not UTF-8 text (byte {error.start + 1} of the line)", row=number
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(str(path), f"malformed JSON: {error.msg}", row=number) from None
            if not isinstance(row, dict):
                raise DataError(str(path), f"expected a JSON object, got {type(row).__name__}", row=number)
            yield number, row


def _json_rows(path: Path) -> list[Row]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except json.JSONDecodeError as error:
        raise DataError(str(path), f"malformed JSON: {error.msg}", row=error.lineno) from None
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), list):
        data = next(iter(data.values()))  # {"data": [...]}-style wrappers
    if not isinstance(data, list):
        raise DataError(str(path), "expected a JSON array of objects (or JSON Lines in a .jsonl file)")
    for number, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            raise DataError(str(path), f"record {number} is a {type(row).__name__}, not an object")
    return list(enumerate(data, start=1))


def _csv_record_lines(path: Path) -> list[int]:
    """The file line on which each CSV record starts (the header is line 1; a quoted field may span lines).

    A record whose field count differs from the header's is an error: pandas, behind ``datasets``, would
    read one extra field as an index column and shift every value into the wrong column.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, strict=True)
            header = next(reader, None)
            starts, previous_end = [], reader.line_num
            for record in reader:
                if record:  # blank lines hold no record (the CSV reader behind datasets skips them too)
                    if len(record) != len(header):
                        raise DataError(
                            str(path),
                            f"{len(record)} fields where the header has {len(header)}",
                            row=previous_end + 1,
                        )
                    starts.append(previous_end + 1)
                previous_end = reader.line_num
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except csv.Error as error:
        raise DataError(str(path), f"malformed CSV: {error}", row=reader.line_num) from None
    return starts


def _csv_rows(path: Path) -> list[Row]:
    """Rows numbered by the line they start on; values typed as ``datasets`` (pandas) types them."""
    lines = _csv_record_lines(path)
    if not lines:
        return []
    import datasets

    try:
        dataset = datasets.Dataset.from_csv(str(path))
    except Exception as error:  # what the checks above let through is still the file's fault
        raise DataError(str(path), f"not a readable CSV file: {_first_line(error)}") from None
    return list(zip(lines, (row for _, row in _dataset_rows(dataset))))


def _parquet_rows(path: Path) -> list[Row]:
    import pyarrow
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pyarrow.ArrowException, OSError) as error:
        raise DataError(str(path), f"not a readable Parquet file: {_first_line(error)}") from None
    return list(enumerate(table.to_pylist(), start=1))


def _first_line(error: BaseException) -> str:
    """An exception's message on one line (library messages can span several)."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _dataset_rows(dataset: Any) -> Iterator[Row]:
    for index, row in enumerate(dataset, start=1):
        yield index, dict(row)


def _load_from_disk(path: Path, split: str) -> Any:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as error:
        raise DataError(str(path), f"not a saved dataset folder: {error}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(str(path), f"no split '{split}'; it has {', '.join(loaded)}")
        loaded = loaded[split]
    return loaded


def _load_from_hub(name: str, split: str) -> Any:
    import datasets

    try:
        return datasets.load_dataset(name, split=split)
    except Exception as error:  # offline, missing, or private: all the user's to fix
        raise DataError(
            name, f"not a local file or folder, and loading it from the hub failed: {error}"
        ) from None
