"""Results cache: every result stored under a hash of its config, with the config and the environment.

A result is a ``pandas.DataFrame`` computed from a frozen dataclass config on a device. :class:`ResultsCache`
stores it in ``<root>/<ConfigClass>/<key>/`` as ``result.csv`` next to ``record.json``: the config, the
environment of :func:`fg_analysis.runs.env.environment` (versions, device, commit), the wall time, the date, and what
is needed to verify the result file (its row count and SHA-256). Every number in the book can so be traced to
what produced it, and a damaged entry is detected rather than read back short.

The key (:func:`config_key`) hashes the record schema version :data:`SCHEMA`, the config's class and fields and
the device type (``cpu``, ``cuda``): a CPU and a GPU run of one config are two results, and a change of the
record format never reads an old record (old folders are simply not found; no shims).

Lookup order: the writable root (default ``results/cache``, ignored by git, or ``$FG_RESULTS``), then the
read-only ``results/published`` folder in the repository, where stored runs are committed. A damaged entry in
the writable root (a cut ``result.csv``, an empty file, an unreadable ``record.json``) warns with its path and
counts as a miss, so it is recomputed; a damaged published entry raises :class:`DamagedResult` with the path and
how to regenerate it (published results are evidence: they are never silently replaced).

Sweeps cache each unit separately (:func:`fg_analysis.runs.sweep.sweep`), so an interrupted sweep keeps everything that
finished, and a rerun computes only what is missing.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Square:
...     x: int
>>> import tempfile, pandas as pd
>>> cache = ResultsCache(tempfile.mkdtemp(), published=None)
>>> cache.get(Square(3), lambda c: pd.DataFrame({"y": [c.x ** 2]}))["y"].item()
9
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pandas as pd

from fg_analysis.runs.env import environment, resolve_device
from fg_analysis.runs.paths import PUBLISHED, REPOSITORY

__all__ = ["SCHEMA", "atomic_write", "DamagedResult", "ResultsCache", "config_dict", "config_key",
           "device_type", "stored_summary", "with_config_columns"]


#: version of the record format; part of every key, so records of another format are never read
SCHEMA = 2


class DamagedResult(RuntimeError):
    """A stored result that fails its check (row count, checksum, unreadable files)."""


def config_dict(config) -> dict:
    """The config as a JSON-ready dict, tagged with its class name."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"configs must be dataclass instances; got {type(config).__name__}")
    return {"class": type(config).__name__, **dataclasses.asdict(config)}


def device_type(device: str | object = "cpu") -> str:
    """``"cpu"`` or ``"cuda"`` for any device spelling (``"cuda:1"``, ``torch.device``); ``"auto"`` resolved."""
    return resolve_device(device).type


def config_key(config, device: str | object = "cpu") -> str:
    """A stable 16-hex-digit key of the schema, the config's class and fields (independent of field order) and
    the device type."""
    payload = {"schema": SCHEMA, "device": device_type(device), **config_dict(config)}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def with_config_columns(frame: pd.DataFrame, config) -> pd.DataFrame:
    """``frame`` with each scalar field of ``config`` as a column, unless it has one of that name already."""
    for field, value in dataclasses.asdict(config).items():
        if field not in frame.columns and not isinstance(value, (list, tuple, dict)):
            frame[field] = value
    return frame


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def atomic_write(folder: Path, name: str, write: Callable[[str], None]) -> Path:
    """Write ``folder/name`` through a temporary file and a rename, so a reader never sees half a file."""
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, folder / name)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return folder / name


def read_entry(folder: Path) -> tuple[pd.DataFrame, dict]:
    """``(frame, record)`` of one stored entry, verified; :class:`DamagedResult` naming the file otherwise."""
    record_path, result_path = folder / "record.json", folder / "result.csv"
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError) as error:
        raise DamagedResult(f"{record_path} is unreadable ({error})") from error
    if not isinstance(record, dict) or record.get("schema") != SCHEMA or "sha256" not in record:
        raise DamagedResult(f"{record_path} is not a schema-{SCHEMA} record")
    if not result_path.is_file() or result_path.stat().st_size == 0:
        raise DamagedResult(f"{result_path} is missing or empty")
    if _sha256(result_path) != record["sha256"]:
        raise DamagedResult(f"{result_path} does not match the checksum in its record (cut or changed)")
    try:
        frame = pd.read_csv(result_path)
    except (ValueError, OSError) as error:
        raise DamagedResult(f"{result_path} is unreadable ({error})") from error
    if len(frame) != record.get("rows"):
        raise DamagedResult(f"{result_path} has {len(frame)} rows; its record says {record.get('rows')}")
    return frame, record


class ResultsCache:
    """Stores and finds results by config and device; see the module docstring."""

    def __init__(self, root: str | os.PathLike | None = None, *, published: str | os.PathLike | None = PUBLISHED):
        self.root = Path(root or os.environ.get("FG_RESULTS", REPOSITORY / "results" / "cache"))
        self.published = Path(published) if published else None

    def folder(self, config, device: str | object = "cpu") -> Path:
        """Where ``config``'s result on ``device`` is written (in the writable root)."""
        return self.root / type(config).__name__ / config_key(config, device)

    def load(self, config, *, device: str | object = "cpu") -> tuple[pd.DataFrame, dict] | None:
        """``(frame, record)`` if this config's result on ``device`` is stored (writable root first), else None.

        A damaged entry in the writable root warns with its path and counts as missing; a damaged published
        entry raises :class:`DamagedResult` saying how to regenerate it.
        """
        key = config_key(config, device)
        for root in [self.root] + ([self.published] if self.published else []):
            folder = root / type(config).__name__ / key
            if not folder.is_dir() or not any(folder.iterdir()):
                continue
            try:
                return read_entry(folder)
            except DamagedResult as error:
                if root == self.published and root != self.root:
                    raise DamagedResult(f"{error}. This published result is damaged: restore it with "
                                        f"`git checkout -- {folder}` or regenerate it with the experiment's "
                                        "--publish command") from None
                warnings.warn(f"damaged cache entry, recomputing: {error}", RuntimeWarning, stacklevel=2)
        return None

    def save(self, config, frame: pd.DataFrame, *, device: str | object = "cpu",
             wall_time: float | None = None) -> Path:
        """Store ``frame`` with its record, atomically: a crash leaves the old entry, or one that fails its check
        (never half a result read back as whole)."""
        folder = self.folder(config, device)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            result = atomic_write(folder, "result.csv", lambda path: frame.to_csv(path, index=False))
        except OSError as error:
            raise OSError(f"cannot write results under {self.root}: {error.strerror or error} "
                          "(set FG_RESULTS to a writable folder)") from error
        record = {"schema": SCHEMA, "key": folder.name, "config": config_dict(config),
                  "environment": environment(device), "wall_time_s": wall_time,
                  "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": len(frame), "sha256": _sha256(result)}
        atomic_write(folder, "record.json", lambda path: Path(path).write_text(json.dumps(record, indent=1)))
        return folder

    def get(self, config, compute: Callable[[object], pd.DataFrame], *, device: str | object = "cpu",
            refresh: bool = False) -> pd.DataFrame:
        """The cached result of ``config`` on ``device``, or ``compute(config)`` stored first (``refresh=True``
        recomputes). The returned frame carries the record in ``frame.attrs["record"]``."""
        found = None if refresh else self.load(config, device=device)
        if found is None:
            start = time.perf_counter()
            frame = compute(config)
            folder = self.save(config, frame, device=device, wall_time=time.perf_counter() - start)
            found = read_entry(folder)
        frame, record = found
        frame.attrs["record"] = record
        return frame

    def read(self, configs: Iterable, *, device: str | object = "cpu") -> tuple[list[pd.DataFrame], list[dict]]:
        """The stored results among ``configs`` (nothing is computed): their frames, each with its config's fields
        as columns (:func:`with_config_columns`), and their records, in the order of ``configs``; a config with no
        stored result is left out."""
        frames, records = [], []
        for config in configs:
            found = self.load(config, device=device)
            if found is not None:
                frames.append(with_config_columns(found[0], config))
                records.append(found[1])
        return frames, records

    def stored(self, configs: Sequence, *, prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
               complete: bool = False, device: str | object = "cpu") -> pd.DataFrame | None:
        """The stored results among ``configs`` as one frame (:meth:`read`; nothing is computed), passed through
        ``prepare`` when given; ``None`` when none is stored, or with ``complete=True`` when any is missing.

        ``frame.attrs``: ``"records"`` (each stored config's record: config, environment with device and commit,
        date saved), ``"stored"`` and ``"units"`` (how many of ``configs`` were found, of how many).
        """
        frames, records = self.read(configs, device=device)
        if not frames or (complete and len(frames) < len(configs)):
            return None
        frame = pd.concat(frames, ignore_index=True)
        frame = prepare(frame) if prepare is not None else frame
        frame.attrs = {"records": records, "stored": len(frames), "units": len(configs)}
        return frame

    def records(self, kind: str | type) -> Iterator[tuple[pd.DataFrame, dict]]:
        """Every verified ``(frame, record)`` stored for a config class (writable root, then published), for
        any device and config; damaged entries are skipped with a warning naming them."""
        name = kind if isinstance(kind, str) else kind.__name__
        seen = set()
        for root in [self.root] + ([self.published] if self.published else []):
            for folder in sorted((root / name).glob("*/")) if (root / name).is_dir() else []:
                if folder.name in seen:
                    continue
                try:
                    entry = read_entry(folder)
                except DamagedResult as error:
                    warnings.warn(f"skipping a damaged result: {error}", RuntimeWarning, stacklevel=2)
                    continue
                seen.add(folder.name)
                yield entry


def stored_summary(root: str | os.PathLike = PUBLISHED) -> pd.DataFrame:
    """One row per kind of stored result and device under ``root``: how many units, their summed and largest
    wall time, the commits and the first and last dates they were saved (``python -m fg_analysis records``)."""
    cache = ResultsCache(root, published=None)
    rows = []
    kinds = sorted(folder.name for folder in Path(root).iterdir() if folder.is_dir()) if Path(root).is_dir() else []
    for kind in kinds:
        for _, record in cache.records(kind):
            environment = record.get("environment", {})
            rows.append({"kind": kind, "device": environment.get("device_name") or environment.get("device"),
                         "commit": environment.get("commit"), "saved": record.get("saved", "")[:10],
                         "wall_time_s": record.get("wall_time_s") or 0.0})
    if not rows:
        return pd.DataFrame(columns=["kind", "device", "units", "wall_time_h", "longest_unit_min", "commits",
                                     "first_saved", "last_saved"])
    frame = pd.DataFrame(rows)
    table = frame.groupby(["kind", "device"]).agg(
        units=("wall_time_s", "size"), wall_time_h=("wall_time_s", lambda s: round(s.sum() / 3600, 2)),
        longest_unit_min=("wall_time_s", lambda s: round(s.max() / 60, 1)),
        commits=("commit", lambda s: ", ".join(sorted(set(map(str, s))))),
        first_saved=("saved", "min"), last_saved=("saved", "max"))
    return table.reset_index()
