"""The decode_limit study: it composes as the GPU host runs it, every job's roofline says which ceiling it meets
and where its Linear layers turn compute-bound, and the chart script draws tokens/s and bandwidth share per batch."""

from __future__ import annotations

import sys

import pytest

from runner.checks.run_options import isolate_choice
from tests.conftest import ROOT, compose_config

sys.path.insert(0, str(ROOT / "scripts"))

pytest.importorskip("torchao")


def test_the_study_composes_for_the_gpu_host():
    cfg = compose_config(["experiment=decode_limit", "quant=int4wo"])
    assert (cfg.model.name, cfg.model.weights, cfg.model.dtype) == ("llama", "random", "bfloat16")
    assert (cfg.scenario.name, cfg.scenario.sequence_length) == ("generate", 128)
    assert cfg.convert.compile is True and cfg.convert.compile_options.mode == "max-autotune"
    assert cfg.quant.method == "torchao" and cfg.hardware.name == "cuda"
    # a sweep's jobs each in a process of their own: in the sweep's process a later job tuned its kernels again
    # instead of loading the cached picks (docs/benchmarks.md §6q)
    assert isolate_choice(cfg.isolate) is not False


@pytest.mark.parametrize("quant", ["none", "int4wo_triton", "int8wo_triton"])
def test_the_fused_study_composes_and_passes_the_checks_for_each_weight(quant):
    from runner.config.load import to_run_config

    cfg = compose_config(["experiment=decode_fused", f"quant={quant}", "hardware=cpu"])  # no GPU here
    run = to_run_config(cfg)  # the checks: convert.fused_decode refuses what its kernels cannot read
    assert run.convert.fused_decode and not run.convert.compile and run.scenario.batch_size == 1
    assert (run.model.name, run.scenario.sequence_length, run.scenario.new_tokens) == ("llama", 128, 128)


def test_chart_of_a_sweep(run_job, tmp_path):
    import decode_limit_chart as chart

    common = ["scenario=generate", "scenario.new_tokens=4", "scenario.sequence_length=16"]
    common += ["roofline.peak_tflops=1.0", "roofline.bandwidth_gbs=10", "compare.enabled=false"]
    for quant in ("none", "int8wo"):
        for batch in (1, 2):
            record = run_job(f"quant={quant}", f"scenario.batch_size={batch}", *common)
            assert record["status"] == "ok", record.get("error")
            decode = record["roofline"]["decode"]
            assert decode["bound"] in ("bandwidth", "compute")
            assert decode["share_of_peak"] > 0
    lines, failed = chart.points(tmp_path)
    assert sorted(lines) == ["int8wo", "none"] and not failed
    assert [r["batch"] for r in lines["none"]] == [1, 2]
    # smaller weights take less time to read: their matmuls turn compute-bound at a proportionally smaller batch
    ridge_none, ridge_int8 = lines["none"][0]["ridge"], lines["int8wo"][0]["ridge"]
    assert ridge_int8 == pytest.approx(
        ridge_none * lines["int8wo"][0]["weight_bytes"] / lines["none"][0]["weight_bytes"]
    )
    assert chart.main([str(tmp_path)]) == 0
    assert (tmp_path / "decode_limit.png").stat().st_size > 10_000
    table = (tmp_path / "decode_limit.md").read_text()
    assert "| int8wo | 2 |" in table and "| none | 1 |" in table


def test_a_job_compiled_in_another_mode_is_its_own_line(run_job, tmp_path):
    """Sessions' sweeps side by side in one folder: a job compiled with mode=reduce-overhead is not a point of the
    max-autotune series of the same quantization."""
    import json

    import decode_limit_chart as chart

    common = ["scenario=generate", "scenario.new_tokens=2", "scenario.sequence_length=8", "compare.enabled=false"]
    for batch in (1, 2):
        record = run_job(f"scenario.batch_size={batch}", *common)
        assert record["status"] == "ok", record.get("error")
    assert list(chart.points(tmp_path)[0]) == ["none"]  # not compiled: the mode does not count
    records = {path: json.loads(path.read_text()) for path in tmp_path.rglob("results.json")}
    path, record = next((p, r) for p, r in records.items() if r["config"]["scenario"]["batch_size"] == 2)
    # made into what a compiled reduce-overhead job records
    record["config"]["convert"]["compile"] = True
    record["config"]["convert"]["compile_options"]["mode"] = "reduce-overhead"
    path.write_text(json.dumps(record))
    lines, _ = chart.points(tmp_path)
    assert {quant: [r["batch"] for r in rows] for quant, rows in lines.items()} == {
        "none": [1],
        "none (reduce-overhead)": [2],
    }
    # what the compile stage recorded wins over the config; a record from before compile_options: reduce-overhead
    record.setdefault("convert", {})["compile"] = {"mode": "default"}
    path.write_text(json.dumps(record))
    assert "none (default)" in chart.points(tmp_path)[0]
    del record["convert"]["compile"], record["config"]["convert"]["compile_options"]
    path.write_text(json.dumps(record))
    assert "none (reduce-overhead)" in chart.points(tmp_path)[0]


def test_a_folder_that_is_not_there_is_bad_input(tmp_path, capsys):
    import decode_limit_chart as chart

    assert chart.main([str(tmp_path / "multirun" / "decode_limt")]) == 2
    assert "sweep_dir" in capsys.readouterr().err and not (tmp_path / "multirun").exists()


def test_formats_that_share_a_ridge_share_one_line_that_names_them():
    import decode_limit_chart as chart

    row = lambda ridge: {"ridge": ridge}  # noqa: E731
    lines = {
        "int4wo": [row(61.6)],
        "int4wo (reduce-overhead)": [row(61.6)],
        "int4wo_gemlite": [row(61.4)],  # rounds to another integer: still the same line
        "fp8wo": [row(109.4)],
        "none": [row(None), row(210.2)],
    }
    assert chart.ridge_lines(lines) == {61.6: ["int4wo", "int4wo_gemlite"], 109.4: ["fp8wo"], 210.2: ["none"]}
