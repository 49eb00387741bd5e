"""Results cache: every result stored under a hash of its config, with the config and the environment.

A result is a ``pandas.DataFrame`` computed from a frozen dataclass config. :class:`ResultsCache` stores it in
``<root>/<ConfigClass>/<hash>/`` as ``result.csv`` next to ``record.json`` (the config, the environment of
:func:`fg_analysis.env.environment` — versions, device, commit — and the wall time), so every number in the
book can be traced to what produced it. A rerun with the same config reads the cache. Sweeps cache each unit
separately (:meth:`ResultsCache.sweep`), so an interrupted sweep keeps everything that finished.

Lookup order: the writable root (default ``results/cache``, ignored by git, or ``$FG_RESULTS``), then the
read-only ``results/published`` folder in the repository, where paper-sized runs made on a GPU are committed.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Square:
...     x: int
>>> import tempfile, pandas as pd
>>> cache = ResultsCache(tempfile.mkdtemp())
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
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from fg_analysis.env import environment

REPOSITORY = Path(__file__).resolve().parent.parent
PUBLISHED = REPOSITORY / "results" / "published"


def config_dict(config) -> dict:
    """The config as a JSON-ready dict, tagged with its class name."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"configs must be dataclass instances; got {type(config).__name__}")
    return {"class": type(config).__name__, **dataclasses.asdict(config)}


def config_hash(config) -> str:
    """A stable 16-hex-digit hash of the config's class and fields (independent of field order)."""
    text = json.dumps(config_dict(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ResultsCache:
    """Stores and finds results by config; see the module docstring."""

    def __init__(self, root: str | os.PathLike | None = None, *, published: str | os.PathLike | None = PUBLISHED):
        self.root = Path(root or os.environ.get("FG_RESULTS", REPOSITORY / "results" / "cache"))
        self.published = Path(published) if published else None

    def _folders(self, config) -> list[Path]:
        name, digest = type(config).__name__, config_hash(config)
        roots = [self.root] + ([self.published] if self.published else [])
        return [root / name / digest for root in roots]

    def load(self, config) -> tuple[pd.DataFrame, dict] | None:
        """``(frame, record)`` if this config's result is stored (writable root first), else ``None``."""
        for folder in self._folders(config):
            if (folder / "result.csv").is_file() and (folder / "record.json").is_file():
                return pd.read_csv(folder / "result.csv"), json.loads((folder / "record.json").read_text())
        return None

    def save(self, config, frame: pd.DataFrame, *, device: str = "cpu", wall_time: float | None = None) -> Path:
        """Store ``frame`` with its record; written atomically (a crash never leaves half a result)."""
        folder = self._folders(config)[0]
        folder.mkdir(parents=True, exist_ok=True)
        record = {"config": config_dict(config), "hash": config_hash(config), "environment": environment(device),
                  "wall_time_s": wall_time, "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        for name, write in (("result.csv", lambda path: frame.to_csv(path, index=False)),
                            ("record.json", lambda path: Path(path).write_text(json.dumps(record, indent=1)))):
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            os.close(handle)
            write(temporary)
            os.replace(temporary, folder / name)
        return folder

    def get(self, config, compute: Callable[[object], pd.DataFrame], *, device: str = "cpu",
            refresh: bool = False) -> pd.DataFrame:
        """The cached result of ``config``, or ``compute(config)`` stored first (``refresh=True`` recomputes).

        The returned frame carries the record in ``frame.attrs["record"]``.
        """
        found = None if refresh else self.load(config)
        if found is None:
            start = time.perf_counter()
            frame = compute(config)
            self.save(config, frame, device=device, wall_time=time.perf_counter() - start)
            found = self.load(config)
        frame, record = found
        frame.attrs["record"] = record
        return frame

    def sweep(self, configs: Iterable, compute: Callable[[object], pd.DataFrame], *, device: str = "cpu",
              description: str = "sweep", refresh: bool = False, progress: bool = True) -> pd.DataFrame:
        """Run (or read) every config, each cached on its own, and concatenate the results.

        Each frame gets the config's fields as columns (unless it already has them). Units finished before an
        interruption are read back on the next call, so nothing computed is lost.
        """
        configs = list(configs)
        frames = []
        for config in tqdm(configs, desc=description, disable=not progress, mininterval=2.0):
            frame = self.get(config, compute, device=device, refresh=refresh)
            for field, value in dataclasses.asdict(config).items():
                if field not in frame.columns and not isinstance(value, (list, tuple, dict)):
                    frame[field] = value
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
