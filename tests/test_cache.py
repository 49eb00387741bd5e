"""Results cache: stable config hashes, compute-once semantics, the stored record, resumable sweeps, and the
read-only published folder as a fallback."""

import dataclasses
import json
import time

import pandas as pd
import pytest

from fg_analysis.runs import cache as cache_module
from fg_analysis.runs.cache import ResultsCache, config_dict, config_key
from fg_analysis.runs.paths import REPOSITORY
from fg_analysis.runs.sweep import sweep


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


def test_config_key_stable_and_sensitive():
    base = config_key(Unit())
    assert base == config_key(Unit()) and len(base) == 16 and int(base, 16) >= 0
    changes = {"n": 32, "k": 4, "aggregator": "mean", "lr": 0.0100001, "seeds": (0, 2)}
    hashes = {base}
    for field, value in changes.items():
        changed = config_key(dataclasses.replace(Unit(), **{field: value}))
        assert changed != base, field
        hashes.add(changed)
    assert len(hashes) == len(changes) + 1


def test_config_key_depends_on_class_not_field_order():
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

    assert config_key(Unit()) == config_key(globals()["Unit"]())
    assert config_key(Other()) != config_key(globals()["Unit"]())


@pytest.mark.slow
def test_config_key_is_stable_across_processes():
    """Not Python's salted hash(): a fresh interpreter computes the same digest."""
    import subprocess
    import sys
    code = ("import dataclasses\nfrom fg_analysis.runs.cache import config_key\n"
            "@dataclasses.dataclass(frozen=True)\nclass Unit:\n    n: int = 64\n    k: int = 16\n"
            "    aggregator: str = 'projection'\n    lr: float = 0.01\n    seeds: tuple = (0, 1)\n"
            "print(config_key(Unit()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=REPOSITORY)
    assert out.stdout.strip() == config_key(Unit())


def test_config_must_be_dataclass_instance():
    for bad in ({"n": 1}, Unit, 3):
        with pytest.raises(TypeError, match="dataclass"):
            config_key(bad)
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
    folder = store.root / "Unit" / config_key(Unit(lr=0.5))
    assert (folder / "result.csv").is_file()
    record = json.loads((folder / "record.json").read_text())
    assert record == frame.attrs["record"]
    assert record["config"] == {"class": "Unit", "n": 64, "k": 16, "aggregator": "projection", "lr": 0.5,
                                "seeds": [0, 1]}
    assert record["key"] == config_key(Unit(lr=0.5)) and record["schema"] == cache_module.SCHEMA
    assert record["rows"] == 1 and len(record["sha256"]) == 64
    environment = record["environment"]
    assert {"torch", "numpy", "pandas", "python"} <= set(environment["versions"])
    assert environment["device"] == "cpu" and environment["device_name"].startswith("cpu")
    assert "commit" in environment
    assert 0.05 <= record["wall_time_s"] < 60
    assert not list(folder.glob(".tmp-*"))  # atomic writes leave no temporary files


def test_sweep_resumes_after_failure(store):
    configs = [Unit(n=n) for n in (1, 2, 3, 4, 5)]
    with pytest.raises(RuntimeError, match="unit 3 failed"):
        sweep(store, configs, Counter(fail_on={3}), progress=False)
    assert store.load(configs[0]) is not None and store.load(configs[1]) is not None
    assert all(store.load(config) is None for config in configs[2:])
    rerun = Counter()
    result = sweep(store, configs, rerun, progress=False)
    assert [config.n for config in rerun.calls] == [3, 4, 5]
    assert len(result) == 2 * len(configs)
    assert result["n"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert {"k", "aggregator", "lr"} <= set(result.columns) and "seeds" not in result.columns
    third = Counter()
    pd.testing.assert_frame_equal(sweep(store, configs, third, progress=False), result)
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
    assert (tmp_path / "env-root" / "Unit" / config_key(Unit()) / "record.json").is_file()


def test_key_depends_on_device_type_and_schema(monkeypatch):
    assert config_key(Unit(), "cpu") == config_key(Unit()) == config_key(Unit(), "auto" if not __import__(
        "torch").cuda.is_available() else "cpu")
    cpu = config_key(Unit(), "cpu")
    monkeypatch.setattr(cache_module, "resolve_device", lambda device: type("D", (), {"type": "cuda"})())
    assert config_key(Unit(), "cuda:1") != cpu
    monkeypatch.undo()
    monkeypatch.setattr(cache_module, "SCHEMA", cache_module.SCHEMA + 1)
    assert config_key(Unit()) != cpu


def _stored(store, config=Unit()):
    store.get(config, Counter())
    return store.folder(config)


@pytest.mark.parametrize("damage", ["cut at a line", "cut mid-line", "empty", "changed", "record unreadable",
                                    "record deleted"])
def test_damaged_entry_warns_with_its_path_and_is_recomputed(store, damage):
    folder = _stored(store)
    result, record = folder / "result.csv", folder / "record.json"
    text = result.read_text()
    if damage == "cut at a line":
        result.write_text(text.split("\n", 2)[0] + "\n" + text.split("\n", 2)[1] + "\n")
    elif damage == "cut mid-line":
        result.write_text(text[:-3])
    elif damage == "empty":
        result.write_text("")
    elif damage == "changed":
        result.write_text(text.replace("1024", "1025"))
    elif damage == "record unreadable":
        record.write_text('{"schema": 2, "rows"')
    else:
        record.unlink()
    compute = Counter()
    with pytest.warns(RuntimeWarning, match=str(folder)):
        frame = store.get(Unit(), compute)
    assert len(compute.calls) == 1 and frame["value"].tolist() == [1024, 80]
    assert store.load(Unit()) is not None  # the recomputed entry verifies


def test_damaged_published_entry_refuses_with_how_to_regenerate(tmp_path):
    published = tmp_path / "published"
    folder = _stored(ResultsCache(published, published=None))
    (folder / "result.csv").write_text("value\n1024\n")
    reader = ResultsCache(tmp_path / "cache", published=published)
    with pytest.raises(cache_module.DamagedResult, match=r"result\.csv.*regenerate"):
        reader.get(Unit(), Counter())


def test_unwritable_root_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot write results under .*FG_RESULTS"):
        ResultsCache(blocker / "cache", published=None).get(Unit(), Counter())


def test_records_walks_every_device_and_skips_damage(store):
    _stored(store, Unit(n=1))
    damaged = _stored(store, Unit(n=2))
    (damaged / "result.csv").write_text("")
    with pytest.warns(RuntimeWarning, match="damaged"):
        found = list(store.records(Unit))
    assert [record["config"]["n"] for _, record in found] == [1]


def test_stored_summary_lists_units_and_wall_time(store):
    store.get(Unit(n=1), Counter())
    store.get(Unit(n=2), Counter())
    table = cache_module.stored_summary(store.root)
    assert table[["kind", "units"]].values.tolist() == [["Unit", 2]]
    assert (table["wall_time_h"] >= 0).all() and table["first_saved"].iloc[0] <= table["last_saved"].iloc[0]
