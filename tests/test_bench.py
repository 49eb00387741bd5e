"""Tests of fg_analysis.bench: every timed step against autograd, the round-robin clock, the memory probe, the
summary arithmetic and the command line. Nothing here asserts a timing: times are benchmark figures, measured
and stored by the benchmark only."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import fg_analysis
from fg_analysis import aggregate, bench, jvp, zero_tangents
from fg_analysis.nets import gradients
from fg_analysis.__main__ import main as package_main
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.nets.models import build_model
from fg_analysis.params import ravel
from fg_analysis.tangents import Normal


def _small_net(seed=0):
    model = build_model("fc", input_shape=(1, 3, 3), n_classes=10, width=5, seed=seed, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(7, 1, 3, 3, generator=generator, dtype=torch.float64)
    targets = torch.randint(0, 10, (7,), generator=generator)
    return model, inputs, targets


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def _gradient(model, inputs, targets):
    f = jvp.module_loss(model, F.cross_entropy)
    return jvp.gradient(f, {name: p.detach() for name, p in model.named_parameters()}, inputs, targets)[1]


def test_the_benchmark_times_the_package_functions():
    assert bench.JVP_METHODS == {"vmap": "forward"}  # the fast path is ForwardGradient.step itself
    assert set(bench.ACTIVITY_METHODS.values()) <= set(gradients.MODES)
    assert bench.FG_PHASES == fg_analysis.estimator.PHASES
    assert not any(hasattr(bench, name) for name in ("plot_time_against_k", "plot_breakdown", "plot_memory",
                                                     "rq3_runs", "published_records"))
    sources = (Path(bench.__file__).parent).glob("*.py")
    assert not any("import_module" in source.read_text() for source in sources)  # no reaching up a floor


def test_flat_parameters_are_views_of_one_vector():
    model, _, _ = _small_net()
    flat, params = bench.flat_parameters(model)
    assert flat.numel() == sum(p.numel() for p in model.parameters())
    torch.testing.assert_close(ravel(params)[0], flat)
    assert list(params) == [name for name, _ in model.named_parameters()]
    flat.zero_()
    assert all(float(p.abs().sum()) == 0 for p in model.parameters())  # the module's parameters are views of it


def test_fast_path_with_k_equal_n_projection_is_an_exact_gradient_step():
    model, inputs, targets = _small_net()
    n = sum(p.numel() for p in model.parameters())
    before, grad = _flat(model), _gradient(model, inputs, targets)
    step = bench.make_fg_step(model, inputs, targets, k=n, aggregator="projection", lr=0.5,
                              generator=torch.Generator().manual_seed(3))
    phases = step()
    assert set(phases) == set(bench.FG_PHASES) and all(t >= 0 for t in phases.values())
    torch.testing.assert_close(step.parameters, before - 0.5 * grad)


def test_fast_path_with_the_mean_uses_tangents_of_the_normal_law():
    model, inputs, targets = _small_net()
    n = sum(p.numel() for p in model.parameters())
    before, grad = _flat(model), _gradient(model, inputs, targets)
    step = bench.make_fg_step(model, inputs, targets, k=3, aggregator="mean", lr=0.1,
                              generator=torch.Generator().manual_seed(4))
    step()
    V = Normal().sample(3, n, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    torch.testing.assert_close(step.parameters, before - 0.1 * aggregate.mean(V, V @ grad))


@pytest.mark.parametrize("maker", ["oneoff", "loop"])
def test_oneoff_and_reference_loop_with_k_equal_n_projection_are_gradient_steps(maker):
    model, inputs, targets = _small_net()
    n = sum(p.numel() for p in model.parameters())
    before, grad = _flat(model), _gradient(model, inputs, targets)
    make = bench.make_oneoff_step if maker == "oneoff" else bench.make_reference_loop_step
    phases = make(model, inputs, targets, k=n, aggregator="projection", lr=0.5,
                  generator=torch.Generator().manual_seed(5))()
    assert all(t >= 0 for t in phases.values())
    torch.testing.assert_close(_flat(model), before - 0.5 * grad)


def test_reference_loop_draws_fresh_tangents_per_pass_and_accumulates_the_mean():
    # one tangent per pass, a fresh normal tensor per parameter tensor in the module's order: replay them
    model, inputs, targets = _small_net()
    before, grad = _flat(model), _gradient(model, inputs, targets)
    bench.make_reference_loop_step(model, inputs, targets, k=3, aggregator="mean", lr=0.1,
                                   generator=torch.Generator().manual_seed(6))()
    replay = torch.Generator().manual_seed(6)
    V = torch.stack([torch.cat([torch.randn(p.shape, generator=replay, dtype=p.dtype).reshape(-1)
                                for p in model.parameters()]) for _ in range(3)])
    torch.testing.assert_close(_flat(model), before - 0.1 * aggregate.mean(V, V @ grad))


@pytest.mark.parametrize("method", sorted(bench.ACTIVITY_METHODS))
def test_activity_steps_with_k_at_least_a_projection_are_bp_steps(method):
    model, inputs, targets = _small_net()
    dimension = gradients.activity_dimension(model, (1, 3, 3))
    before, grad = _flat(model), _gradient(model, inputs, targets)
    bench.make_activity_step(model, inputs, targets, k=dimension, aggregator="projection", lr=0.5,
                             mode=bench.ACTIVITY_METHODS[method], generator=torch.Generator().manual_seed(7))()
    torch.testing.assert_close(_flat(model), before - 0.5 * grad)


@pytest.mark.parametrize("k", [1, 3])
def test_floor_is_randn_a_bare_jvp_and_one_addmv(k):
    model, inputs, targets = _small_net()
    n = sum(p.numel() for p in model.parameters())
    before, grad = _flat(model), _gradient(model, inputs, targets)
    phases = bench.make_floor_step(model, inputs, targets, k=k, lr=0.1, generator=torch.Generator().manual_seed(8))()
    assert set(phases) == set(bench.FLOOR_PHASES)
    V = torch.randn(k, n, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    torch.testing.assert_close(_flat(model), before - 0.1 * V.T @ (V @ grad) / k)


def test_steps_reject_unknown_methods_and_aggregators():
    model, inputs, targets = _small_net()
    with pytest.raises(ValueError, match="unknown JVP method"):
        bench.make_fg_step(model, inputs, targets, k=1, method="loop", aggregator="mean", lr=0.1,
                           generator=torch.Generator())
    with pytest.raises(ValueError, match="unknown aggregator"):
        bench.make_fg_step(model, inputs, targets, k=1, aggregator="median", lr=0.1, generator=torch.Generator())
    with pytest.raises(ValueError, match="'mean' or 'projection'"):
        bench.make_reference_loop_step(model, inputs, targets, k=1, aggregator="sum", lr=0.1,
                                       generator=torch.Generator())


def test_bp_step_is_a_gradient_step():
    model, inputs, targets = _small_net()
    before, grad = _flat(model), _gradient(model, inputs, targets)
    bench.make_bp_step(model, inputs, targets, lr=0.1)()
    torch.testing.assert_close(_flat(model), before - 0.1 * grad)


def test_round_robin_takes_medians_per_phase():
    values = {"a": iter([5.0, 1.0, 3.0, 2.0]), "b": iter([7.0, 7.0, 7.0, 7.0])}
    steps = {key: (lambda key=key: {"x": next(values[key]), "y": 1.0}) for key in values}
    timings = bench.time_round_robin(steps, repeats=3, warmup=1)  # the first value of each is the warm-up
    assert timings["a"] == {"x": 2.0, "y": 1.0, "step": 3.0, "step_min": 2.0}
    assert timings["b"]["step"] == 8.0


def test_round_robin_pairs_each_round_with_the_reference():
    # load starts within round 2 (after fg ran, before bp did) and stays: the ratio of the medians, 2 / 3, is
    # off; the median of the per-round ratios (2, 2/3, 2) is the true 2
    values = {"fg": iter([2.0, 2.0, 2.0, 6.0]), "bp": iter([1.0, 1.0, 3.0, 3.0])}
    steps = {key: (lambda key=key: {"x": next(values[key])}) for key in values}
    timings = bench.time_round_robin(steps, repeats=3, warmup=1, paired={"over_bp": "bp", "over_x": "missing"})
    assert timings["fg"]["step"] / timings["bp"]["step"] == pytest.approx(2 / 3)
    assert timings["fg"]["over_bp"] == 2.0 and timings["bp"]["over_bp"] == 1.0
    assert "over_x" not in timings["fg"]


def test_approximation_batched_and_looped_compute_the_same_cosines():
    batched = bench.approximation_cosines(5, 64, 4, batched=True, seed=0)
    looped = bench.approximation_cosines(5, 64, 4, batched=False, seed=0)
    torch.testing.assert_close(batched, looped)
    assert bool(((batched > 0) & (batched <= 1 + 1e-6)).all())
    V = torch.randn(5, 4, 64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(bench.approximation_cosines(5, 64, 4, batched=True, tangents=V),
                               bench.approximation_cosines(5, 64, 4, batched=False, tangents=V))


def test_memory_probe_measures_a_known_allocation():
    spec = dict(mode="probe", depth=2, width=16, batch=8, k=0, seed=0, device="cpu", probe_bytes=48 * 2 ** 20,
                threads=1)
    measured = bench.memory_in_subprocess(spec)
    assert measured["net_bytes"] == pytest.approx(48 * 2 ** 20, rel=0.03)


@pytest.mark.slow
def test_bp_memory_grows_with_depth_and_fg_memory_does_not():
    base = dict(width=128, batch=1024, k=2, seed=0, device="cpu", probe_bytes=0, threads=1)
    net = {(mode, depth): bench.memory_in_subprocess(dict(base, mode=mode, depth=depth))["net_bytes"]
           for mode in ("bp", "fg") for depth in (2, 16)}
    activation = 1024 * 128 * 4
    assert net[("bp", 16)] - net[("bp", 2)] > 0.8 * 14 * activation  # about one stored tensor per extra layer
    assert net[("fg", 16)] < 1.3 * net[("fg", 2)]


def _synthetic_frame(*, paired=True):
    rows = []

    def step(k, method, aggregator, seconds, phases=None, over_bp=None, over_step=None, section="step"):
        rows.append(dict(section=section, model="fc-1024", n=1000, k=k, method=method, aggregator=aggregator,
                         phase="step", seconds=seconds, over_bp=over_bp if paired else math.nan,
                         over_step=over_step if paired else math.nan))
        for phase, value in (phases or {}).items():
            rows.append(dict(section=section, model="fc-1024", n=1000, k=k, method=method, aggregator=aggregator,
                             phase=phase, seconds=value))

    for k in (1, 2, 4, 8, 16):
        vmap = 0.005 + 0.002 * k
        step(k, "bp", "-", 0.010, over_bp=1.0, over_step=0.010 / vmap)
        step(k, "vmap", "projection", vmap, {"sample": 0.0005 * k, "jvp": 0.001 * k}, over_bp=vmap / 0.010,
             over_step=1.0)
        mean = 0.005 + 0.0019 * k
        step(k, "vmap", "mean", mean, over_bp=0.8 if k == 1 else mean / 0.010, over_step=mean / vmap)
        loop = 0.005 + 0.006 * k
        step(k, "loop", "projection", loop, {"passes": 0.006 * k}, over_bp=loop / 0.010, over_step=loop / vmap)
        step(k, "vmap-rademacher", "projection", 0.8 * vmap, {"sample": 0.0001 * k, "jvp": 0.001 * k},
             over_bp=0.8 * vmap / 0.010, over_step=0.8)
        if k in (1, 4, 16):
            step(k, "oneoff", "projection", 1.05 * vmap, over_bp=1.05 * vmap / 0.010, over_step=1.05 if k < 16 else 1.08)
            step(k, "oneoff-rademacher", "projection", 0.9 * vmap, over_bp=0.9 * vmap / 0.010, over_step=0.9)
            step(k, "activity-forward", "projection", 0.012, over_bp=1.2, over_step=0.012 / vmap)
        step(k, "floor", "mean", 0.004 + 0.0015 * k, {"sample": 0.0004 * k, "jvp": 0.0036 + 0.001 * k,
                                                     "update": 0.0001 * k}, section="floor")
    for depth, bp, fg in ((2, 10.0, 50.0), (8, 40.0, 52.0), (32, 160.0, 55.0)):
        rows.append(dict(section="memory", mode="bp", depth=depth, net_bytes=bp))
        rows.append(dict(section="memory", mode="fg", depth=depth, net_bytes=fg))
    rows.append(dict(section="memory", mode="probe", depth=2, net_bytes=101.0, expected_bytes=100.0))
    rows.append(dict(section="approximation", method="batched", stage="aggregation", seconds=0.5))
    rows.append(dict(section="approximation", method="loop", stage="aggregation", seconds=5.0))
    rows.append(dict(section="approximation", method="batched", stage="with sampling", seconds=1.0))
    rows.append(dict(section="approximation", method="loop", stage="with sampling", seconds=2.0))
    for perturbation, k, skipped, materialized in (("weight", 1, 0.004, 0.005), ("activity", 16, 0.002, 0.003)):
        for method, seconds in (("skipped", skipped), ("materialized", materialized)):
            rows.append(dict(section="zero_tangents", model="fc-1024", perturbation=perturbation, k=k,
                             method=method, seconds=seconds))
    return pd.DataFrame(rows)


def test_summary_arithmetic_on_a_synthetic_frame():
    result = bench.summary(_synthetic_frame())
    assert result["vmap_over_loop_k16"] == pytest.approx(0.101 / 0.037, abs=1e-4)  # paired: loop over step
    assert result["vmap_over_loop_passes_k16"] == pytest.approx(0.096 / 0.024)  # passes vs sample + jvp
    assert result["projection_over_mean_k16"] == pytest.approx(0.037 / 0.0354, abs=1e-4)
    assert result["oneoff_over_step_k1"] == pytest.approx(1.05) and result["oneoff_over_step_max"] == 1.08
    assert result["fg1_over_bp"] == pytest.approx(0.8)  # the paired ratio of the single-tangent (mean) step
    assert result["activity_forward_k1_over_bp"] == pytest.approx(1.2)
    assert math.isnan(result["activity_oracle_k1_over_bp"])  # not timed in this frame
    assert result["sampling_floor_ms_k16"] == pytest.approx(6.4)
    assert result["step_over_floor_k16"] == pytest.approx(0.0354 / (0.0064 + 0.0196 + 0.0016), abs=1e-4)
    assert result["sampling_share_k16"] == pytest.approx(0.0064 / 0.0354, abs=1e-4)
    assert result["bp_memory_growth"] == pytest.approx(16.0)
    assert result["fg_memory_growth"] == pytest.approx(1.1)
    assert result["bp_memory_linearity_r2"] == pytest.approx(1.0)
    assert result["memory_probe_error"] == pytest.approx(0.01)
    assert result["batched_over_loop_approximation"] == pytest.approx(10.0)
    assert result["batched_over_loop_approximation_with_sampling"] == pytest.approx(2.0)
    assert result["zero_tangent_speedup_weight_k1"] == pytest.approx(1.25)
    assert result["zero_tangent_speedup_activity_k16"] == pytest.approx(1.5)
    # T(k) = 0.005 + 0.002 k is exact: held-out error 0; break-even with T_BP = 0.01 at k = 2.5
    assert result["cost_model_held_out_error"] == pytest.approx(0.0, abs=1e-6)
    assert result["break_even_k_projection"] == pytest.approx(2.5, abs=1e-3)
    assert all(result["targets_met"].values())
    # the fast path's figures: against the loop (paired with the step, then divided), sampling shares and speed
    loop16 = (0.005 + 0.006 * 16) / (0.005 + 0.002 * 16)
    assert result["vmap_rademacher_over_loop_k16"] == pytest.approx(loop16 / 0.8, abs=1e-3)
    assert result["oneoff_over_loop_k16"] == pytest.approx(loop16 / 1.08, abs=1e-3)
    assert result["oneoff_rademacher_over_loop_k16"] == pytest.approx(loop16 / 0.9, abs=1e-3)
    assert result["oneoff1_over_bp"] == pytest.approx(1.05 * 0.007 / 0.010)
    assert result["sampling_share_normal_k16"] == pytest.approx(0.008 / 0.037, abs=1e-4)
    assert result["sampling_share_rademacher_k16"] == pytest.approx(0.0016 / (0.8 * 0.037), abs=1e-4)
    assert result["randn_over_normal_k16"] == pytest.approx(0.0064 / 0.008)
    assert result["randn_over_rademacher_k16"] == pytest.approx(0.0064 / 0.0016)
    met = result["fast_path_targets_met"]
    assert set(met) == {key for key, *_ in bench.FAST_PATH_TARGETS}
    assert met["vmap_over_loop_k16"] and met["oneoff_over_loop_k16"] and met["vmap_rademacher_over_loop_k16"]
    assert met["sampling_share_normal_k16"] and met["sampling_share_rademacher_k16"]  # 21.6% <= 25%, 5.4% <= 10%
    assert not met["randn_over_rademacher_k16"]  # 4x < 5x
    rows = bench.summary_rows(result).set_index("key")
    assert rows.loc["fast_path:randn_over_rademacher_k16", "bound"] == 5.0
    assert not rows.loc["fast_path:randn_over_rademacher_k16", "met"]


def test_summary_falls_back_to_the_medians_without_paired_ratios():
    result = bench.summary(_synthetic_frame(paired=False))
    assert result["fg1_over_bp"] == pytest.approx(0.0069 / 0.010)
    assert result["oneoff_over_step_k1"] == pytest.approx(1.05)


def test_a_gpu_record_is_judged_by_the_gpu_targets():
    frame = _synthetic_frame()
    assert set(bench.summary(frame)["targets_met"]) == {key for key, *_ in bench.TARGETS}
    frame.attrs["record"] = {"environment": {"device": "cuda", "device_name": "a GPU"}}
    result = bench.summary(frame)
    assert set(result["targets_met"]) == {key for key, *_ in bench.GPU_TARGETS}
    assert "fg1_over_bp" not in result["targets_met"] and "fg1_over_bp" in result  # reported, not judged
    assert result["targets_met"]["batched_over_loop_approximation"]  # 10x >= 5x
    assert result["targets_met"]["vmap_over_loop_k16"] is False  # 2.7x < 3x


def test_summary_rows_store_the_numbers_and_the_verdicts():
    result = bench.summary(_synthetic_frame())
    rows = bench.summary_rows(result).set_index("key")
    assert set(rows.section) == {"summary"}
    assert rows.loc["fg1_over_bp", "value"] == pytest.approx(0.8)
    assert rows.loc["fg1_over_bp", "op"] == "<=" and rows.loc["fg1_over_bp", "bound"] == 2.0
    assert bool(rows.loc["fg1_over_bp", "met"]) and rows.loc["fg16_over_bp", "op"] == ""


@pytest.mark.slow
def test_tiny_end_to_end_run_is_cached_with_its_environment_and_verdicts():
    config = bench.BenchConfig.from_preset("quick", models=(bench.fc(8),), reference_model="fc-8", ks=(1, 2, 4, 16),
                                      fit_ks=(1, 2, 4), repeats=1, warmup=0, memory_depths=(2, 4),
                                      memory_batch=16, memory_probe_bytes=8 * 2 ** 20, approximation_samples=4,
                                      guided_models=(("fc", 8),), guided_jvps=(4,))
    cache = ResultsCache(tempfile.mkdtemp(), published=None)
    frame = bench.run(config, cache=cache, progress=False)
    assert frame.attrs["record"]["environment"]["device"] == "cpu"
    assert set(frame.section) == {"step", "floor", "memory", "approximation", "zero_tangents", "guided", "summary"}
    guided = frame[frame.section == "guided"]
    assert list(guided.approach) == ["random k=4", "guess + 1 random"] and set(guided.model) == {"FC-8"}
    assert (guided.head_flops > 0).tolist() == [False, True] and (guided.step_ms > 0).all()
    steps = frame[(frame.section == "step") & (frame.phase == "step")]
    assert {"bp", "vmap", "vmap-rademacher", "loop", "oneoff", "oneoff-rademacher", "activity-forward",
            "activity-oracle"} == set(steps.method)
    assert set(steps[steps.method == "oneoff"].k) == {1, 4, 16} and set(steps[steps.method.str.startswith(
        "activity")].k) == {1, 2, 4, 16}
    result = bench.summary(frame, reference_model="fc-8", fit_ks=(1, 2, 4))
    stored = frame[frame.section == "summary"].set_index("key")
    assert stored.loc["vmap_over_loop_k16", "value"] == pytest.approx(result["vmap_over_loop_k16"], abs=1e-4)
    assert result["device"] == "cpu" and math.isfinite(result["oneoff_over_step_max"])
    assert not zero_tangents.installed()  # the timings with and without the kernels leave PyTorch as it was
    again = bench.run(config, cache=cache, refresh=False, progress=False)
    assert again.attrs["record"]["saved"] == frame.attrs["record"]["saved"]  # read back, not re-measured
    report = bench.format_report(frame, result)
    assert "Targets for the CPU, set for the FC-1024 (measured on fc-8" in report and "sampling floor" in report
    assert "Guided tangents: FLOPs per sample" in report
    assert "The fast path's targets" in report and "randn_over_rademacher_k16" in report
    assert "fast_path:sampling_share_rademacher_k16" in set(stored.index)


def test_presets_and_cli_help(capsys):
    quick, paper = bench.BenchConfig.from_preset("quick"), bench.BenchConfig.from_preset("full")
    assert 1 in quick.ks and 16 in quick.ks and {"fc-256", "fc-1024"} <= {m.label for m in quick.models}
    assert quick.activity_ks == (1, 2, 4, 16) and quick.oneoff_ks == (1, 4, 16)
    assert paper.ks == (1, 2, 4, 8, 16, 32, 64) and {"resnet18", "vit"} <= {m.label for m in paper.models}
    assert quick.threads == 1 and quick.device == "cpu"
    with pytest.raises(ValueError, match="unknown preset"):
        bench.BenchConfig.from_preset("huge")
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    assert "--full" in capsys.readouterr().out


@pytest.mark.parametrize("argv, flag", [
    (["--device", "tpu"], "--device"), (["--threads", "0"], "--threads"), (["--threads", "two"], "--threads"),
    (["--fast"], "--fast"), (["--quick", "--full"], "--full"),
] + ([] if torch.cuda.is_available() else [(["--device", "cuda"], "--device")]))
def test_bad_flags_are_one_line_errors_naming_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as stopped:
        package_main(["bench", *argv])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and flag in error and error.startswith("python -m fg_analysis bench: error")


@pytest.mark.slow
def test_fg_memory_on_the_flat_vector_does_not_hold_a_copy_of_the_tangents():
    base = dict(width=128, batch=256, k=4, seed=0, device="cpu", probe_bytes=0, threads=1)
    flat = {depth: bench.memory_in_subprocess(dict(base, mode="fg", depth=depth))["net_bytes"] for depth in (2, 16)}
    tangents = 4 * 4 * (784 * 128 + 15 * 128 * 128)  # bytes of V at depth 16, roughly
    assert flat[16] - flat[2] < 0.25 * tangents
