"""Results cache: stable config hashes, compute-once semantics, the stored record, resumable sweeps, and the
read-only published folder as a fallback."""

import dataclasses
import json
import time

import pandas as pd
import pytest

from fg_analysis import cache as cache_module
from fg_analysis.cache import ResultsCache, config_dict, config_hash


@dataclasses.dataclass(frozen=True)
class Unit:
    n: int = 64
    k: int = 16
    aggregator: str = "projection"
    lr: float = 0.01
    seeds: tuple = (0, 1)


class Counter:
    """``compute`` that counts its calls and can be told to fail on given configs."""

    def __init__(self, fail_on=()):
        self.calls, self.fail_on = [], set(fail_on)

    def __call__(self, config):
        self.calls.append(config)
        if config.n in self.fail_on:
            raise RuntimeError(f"unit {config.n} failed")
        return pd.DataFrame({"value": [config.n * config.k, config.n + config.k]})


@pytest.fixture
def store(tmp_path):
    return ResultsCache(tmp_path / "cache", published=tmp_path / "published")


def test_config_hash_stable_and_sensitive():
    base = config_hash(Unit())
    assert base == config_hash(Unit()) and len(base) == 16 and int(base, 16) >= 0
    changes = {"n": 32, "k": 4, "aggregator": "mean", "lr": 0.0100001, "seeds": (0, 2)}
    hashes = {base}
    for field, value in changes.items():
        changed = config_hash(dataclasses.replace(Unit(), **{field: value}))
        assert changed != base, field
        hashes.add(changed)
    assert len(hashes) == len(changes) + 1


def test_config_hash_depends_on_class_not_field_order():
    @dataclasses.dataclass(frozen=True)
    class Unit:  # same name, fields declared in another order
        seeds: tuple = (0, 1)
        lr: float = 0.01
        aggregator: str = "projection"
        k: int = 16
        n: int = 64

    @dataclasses.dataclass(frozen=True)
    class Other:
        n: int = 64
        k: int = 16
        aggregator: str = "projection"
        lr: float = 0.01
        seeds: tuple = (0, 1)

    assert config_hash(Unit()) == config_hash(globals()["Unit"]())
    assert config_hash(Other()) != config_hash(globals()["Unit"]())


@pytest.mark.slow
def test_config_hash_is_stable_across_processes():
    """Not Python's salted hash(): a fresh interpreter computes the same digest."""
    import subprocess
    import sys
    code = ("import dataclasses\nfrom fg_analysis.cache import config_hash\n"
            "@dataclasses.dataclass(frozen=True)\nclass Unit:\n    n: int = 64\n    k: int = 16\n"
            "    aggregator: str = 'projection'\n    lr: float = 0.01\n    seeds: tuple = (0, 1)\n"
            "print(config_hash(Unit()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=cache_module.REPOSITORY)
    assert out.stdout.strip() == config_hash(Unit())


def test_config_must_be_dataclass_instance():
    for bad in ({"n": 1}, Unit, 3):
        with pytest.raises(TypeError, match="dataclass"):
            config_hash(bad)
    assert config_dict(Unit())["class"] == "Unit"


def test_get_computes_once(store):
    compute = Counter()
    first = store.get(Unit(), compute)
    second = store.get(Unit(), compute)
    assert len(compute.calls) == 1
    pd.testing.assert_frame_equal(first, second)
    assert first["value"].tolist() == [64 * 16, 80]
    store.get(Unit(n=8), compute)
    assert len(compute.calls) == 2
    # a fresh cache object on the same root reads it as well
    again = ResultsCache(store.root, published=None).get(Unit(), Counter(fail_on={64}))
    pd.testing.assert_frame_equal(again, first)
    store.get(Unit(), compute, refresh=True)
    assert len(compute.calls) == 3


def test_record(store):
    def slow(config):
        time.sleep(0.05)
        return pd.DataFrame({"x": [1.5]})

    frame = store.get(Unit(lr=0.5), slow)
    folder = store.root / "Unit" / config_hash(Unit(lr=0.5))
    assert (folder / "result.csv").is_file()
    record = json.loads((folder / "record.json").read_text())
    assert record == frame.attrs["record"]
    assert record["config"] == {"class": "Unit", "n": 64, "k": 16, "aggregator": "projection", "lr": 0.5,
                                "seeds": [0, 1]}
    assert record["hash"] == config_hash(Unit(lr=0.5))
    environment = record["environment"]
    assert {"torch", "numpy", "pandas", "python"} <= set(environment["versions"])
    assert environment["device"] == "cpu" and environment["device_name"].startswith("cpu")
    assert "commit" in environment
    assert 0.05 <= record["wall_time_s"] < 60
    assert not list(folder.glob(".tmp-*"))  # atomic writes leave no temporary files


def test_sweep_resumes_after_failure(store):
    configs = [Unit(n=n) for n in (1, 2, 3, 4, 5)]
    with pytest.raises(RuntimeError, match="unit 3 failed"):
        store.sweep(configs, Counter(fail_on={3}), progress=False)
    assert store.load(configs[0]) is not None and store.load(configs[1]) is not None
    assert all(store.load(config) is None for config in configs[2:])
    rerun = Counter()
    result = store.sweep(configs, rerun, progress=False)
    assert [config.n for config in rerun.calls] == [3, 4, 5]
    assert len(result) == 2 * len(configs)
    assert result["n"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert {"k", "aggregator", "lr"} <= set(result.columns) and "seeds" not in result.columns
    third = Counter()
    pd.testing.assert_frame_equal(store.sweep(configs, third, progress=False), result)
    assert third.calls == []


def test_published_folder_is_read(tmp_path):
    published = tmp_path / "published"
    ResultsCache(published, published=None).save(Unit(k=2), pd.DataFrame({"value": [7]}))
    reader = ResultsCache(tmp_path / "empty", published=published)
    compute = Counter(fail_on={64})
    assert reader.get(Unit(k=2), compute)["value"].tolist() == [7]
    assert compute.calls == []
    # the writable root wins over the published folder
    ResultsCache(tmp_path / "empty", published=None).save(Unit(k=2), pd.DataFrame({"value": [8]}))
    assert reader.get(Unit(k=2), compute)["value"].tolist() == [8]
    # without a published folder the result is computed
    with pytest.raises(RuntimeError):
        ResultsCache(tmp_path / "other", published=None).get(Unit(k=2), compute)


def test_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FG_RESULTS", str(tmp_path / "env-root"))
    store = ResultsCache(published=None)
    assert store.root == tmp_path / "env-root"
    store.get(Unit(), Counter())
    assert (tmp_path / "env-root" / "Unit" / config_hash(Unit()) / "record.json").is_file()
