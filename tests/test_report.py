"""The sweep report from records on disk: tables with failed and missing jobs, speedup against the baseline job
that shares the other sweep settings, charts, and the `python -m runner.report` command."""

from __future__ import annotations

import csv
import logging
import sys

import pytest
from omegaconf import OmegaConf

from runner.progress import set_job, steps
from runner.report import __main__ as report_cli
from runner.report.build import write_report
from runner.results import write_json_atomic

PNG = b"\x89PNG\r\n\x1a\n"


def stats(mean_s: float) -> dict:
    return {"count": 3, "mean": mean_s, "p50": mean_s, "p90": mean_s * 1.1, "unit": "s"}


def make_job(sweep, num, attention, batch, latency_s=None, error=None, quant="none"):
    """A job folder as a sweep leaves it: .hydra/overrides.yaml and, unless killed, results.json."""
    job = sweep / str(num)
    overrides = [f"attention={attention}", f"scenario.batch_size={batch}"]
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    if latency_s is None and error is None:
        return  # killed before anything was written
    record = {
        "status": "failed" if error else "ok",
        "overrides": overrides,
        "config": {
            "attention": {"name": attention},
            "quant": {"name": quant},
            "scenario": {"batch_size": batch},
            "report": {"baseline": ["attention=eager", "quant=none"]},
        },
        "model": {"name": "tiny", "weights": "random"},
        "memory": {"cpu_rss_peak_bytes": 300 * 2**20},
    }
    if error:
        record["error"] = {"type": "OutOfMemoryError", "message": error}
    else:
        record["measurements"] = {
            "forward": {
                "latency": stats(latency_s),
                "throughput": {"tokens_per_s": {"value": 128 * batch / latency_s, "unit": "tokens/s"}},
            }
        }
    write_json_atomic(job / "results.json", record)


@pytest.fixture
def sweep(tmp_path):
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, "eager", 1, 0.010)
    make_job(sweep, 1, "eager", 4, 0.040)
    make_job(sweep, 2, "sdpa", 1, 0.005)
    make_job(sweep, 3, "sdpa", 4, 0.010)
    make_job(sweep, 4, "fa2", 1, error="CUDA out of memory. Tried to allocate 2.00 GiB")
    make_job(sweep, 5, "fa2", 4)  # no record at all
    return sweep


def read_rows(path):
    with open(path) as f:
        return {row["job"]: row for row in csv.DictReader(f)}


def test_speedup_is_against_eager_at_the_same_batch_size(sweep):
    summary = write_report(sweep)
    rows = read_rows(sweep / "summary.csv")
    assert float(rows["0"]["speedup"]) == 1.0 and float(rows["1"]["speedup"]) == 1.0
    assert float(rows["2"]["speedup"]) == pytest.approx(2.0)  # 10 ms / 5 ms at batch 1
    assert float(rows["3"]["speedup"]) == pytest.approx(4.0)  # 40 ms / 10 ms at batch 4
    assert rows["4"]["speedup"] == "" and rows["5"]["speedup"] == ""
    assert summary["varied"] == ["attention", "scenario.batch_size"]


def test_failed_and_killed_jobs_are_in_the_tables_with_their_reason(sweep):
    summary = write_report(sweep)
    assert summary["failed"] == 2
    rows = read_rows(sweep / "summary.csv")
    assert rows["4"]["status"] == "failed"
    assert rows["4"]["error"] == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert rows["5"]["status"] == "missing" and "killed" in rows["5"]["error"]
    assert rows["5"]["attention"] == "fa2"  # its settings come from Hydra's overrides.yaml
    text = (sweep / "summary.md").read_text()
    assert "6 job(s), 4 ok, 2 failed" in text
    assert "| 4 | fa2 | 1 | failed |" in text and "| OutOfMemoryError: CUDA out of memory" in text
    assert "Same in every job: model=tiny, weights=random" in text  # said once, not in every row


def test_charts_are_written_for_the_figures_the_sweep_has(sweep):
    summary = write_report(sweep)
    names = sorted(p.name for p in summary["plots"])
    assert names == ["latency.png", "memory.png", "speedup.png", "throughput.png"]
    for path in summary["plots"]:
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000
    assert not list(sweep.glob(".*.tmp*"))  # charts are renamed into place


def test_without_a_matching_baseline_the_report_says_so(sweep):
    summary = write_report(sweep, baseline=["attention=flex"])
    assert "No ok job matches the baseline (attention=flex)" in summary["speedup"]
    assert "speedup" not in read_rows(sweep / "summary.csv")["0"]
    assert not (sweep / "speedup.png").exists()


def test_the_baseline_can_be_chosen_on_the_command_line(sweep, capsys):
    assert report_cli.main([str(sweep), "--baseline", "attention=sdpa", "--no-plots"]) == 0
    rows = read_rows(sweep / "summary.csv")
    assert float(rows["0"]["speedup"]) == pytest.approx(0.5)  # eager is half as fast as sdpa at batch 1
    out = capsys.readouterr().out
    assert "wrote summary.csv, summary.md in" in out and "6 jobs, 2 failed" in out
    assert not (sweep / "latency.png").exists()


def test_report_command_refuses_a_folder_without_runs(tmp_path, capsys):
    assert report_cli.main([str(tmp_path)]) == 2
    assert "no runs found" in capsys.readouterr().err
    assert report_cli.main([str(tmp_path / "absent")]) == 2


def test_one_report_over_the_halves_of_a_study_run_on_two_gpus(tmp_path, capsys):
    """A study split in two sweeps (one per GPU): the report of their common folder holds both, and a half without
    eager takes the baseline from the other half, at the same batch size."""
    make_job(tmp_path / "study" / "gpu0", 0, "eager", 1, 0.010)
    make_job(tmp_path / "study" / "gpu0", 1, "eager", 4, 0.040)
    make_job(tmp_path / "study" / "gpu1", 0, "sdpa", 1, 0.005)
    make_job(tmp_path / "study" / "gpu1", 1, "sdpa", 4, 0.010)
    assert report_cli.main([str(tmp_path / "study"), "--no-plots"]) == 0
    assert "4 jobs, 0 failed" in capsys.readouterr().out
    rows = read_rows(tmp_path / "study" / "summary.csv")
    assert float(rows["gpu1/0"]["speedup"]) == pytest.approx(2.0)
    assert float(rows["gpu1/1"]["speedup"]) == pytest.approx(4.0)


def test_baseline_selectors_match_defaults_from_the_composed_config(tmp_path):
    # quant is never overridden in this sweep: quant=none must still match through the record's config
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, "eager", 1, 0.010, quant="none")
    make_job(sweep, 1, "sdpa", 1, 0.002, quant="none")
    write_report(sweep, baseline=["attention=eager", "quant=none"])
    assert float(read_rows(sweep / "summary.csv")["1"]["speedup"]) == pytest.approx(5.0)


def test_progress_names_the_job_and_stays_quiet_on_quick_phases(caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="runner.progress")
    set_job("job 2 of 5")
    try:
        assert list(steps(range(1000), "forward")) == list(range(1000))
        assert caplog.records == []  # quick: not a line per step
        monkeypatch.setattr("runner.progress.LOG_EVERY_S", 0.0)
        list(steps(range(3), "forward"))
    finally:
        set_job("")
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("job 2 of 5 forward: 1/3")
    assert messages[-1].startswith("job 2 of 5 forward: 3/3 done")


def test_without_matplotlib_the_tables_are_still_written(sweep, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # what a bare GPU host without matplotlib gives
    summary = write_report(sweep)
    assert summary["plots"] == []
    assert "No charts: matplotlib.figure is not installed" in (sweep / "summary.md").read_text()
    assert (sweep / "summary.csv").exists()


def test_rows_say_what_ran_what_was_quantized_and_how_close_it_stayed(run_job, tmp_path):
    """Records from real CPU runs: the attention kernel the probe saw, the quantized layers and footprint ratio, the
    conversions, and the agreement figures; a column one job has and another lacks is not 'the same'."""
    quantized = run_job("quant=4bit", "scenario.sequence_length=16")
    converted = run_job("convert.bettertransformer=true", "attention=eager", "scenario.sequence_length=16")
    assert quantized["status"] == converted["status"] == "ok"
    summary = write_report(tmp_path, plots=False)
    rows = read_rows(tmp_path / "summary.csv")
    q, c = rows["run0"], rows["run1"]
    layers = quantized["model"]["quantization"]["by_scheme"]["fp4"]
    assert q["quantized_layers"] == f"{layers} fp4" and 0 < float(q["footprint_ratio"]) < 1
    assert c["conversions"] == "bettertransformer" and q["conversions"] == ""
    kernels = ", ".join(converted["attention"]["sdpa_kernels"])
    assert c["ran"] == f"sdpa ({kernels})"  # eager was asked for; the conversion ran native SDPA
    assert float(q["relative_max_diff"]) == pytest.approx(quantized["agreement"]["relative_max_diff"], rel=1e-3)
    assert float(q["tolerance"]) == quantized["agreement"]["tolerance"] and q["top1_agreement"]
    same = (tmp_path / "summary.md").read_text().split("Same in every job:")[1].split("\n")[0]
    assert "conversions" not in same and "quantized_layers" not in same and summary["failed"] == 0


def test_a_value_that_differs_in_a_failed_job_is_not_said_to_be_the_same_everywhere():
    from runner.report.tables import constant_columns

    rows = [
        {"job": "0", "status": "ok", "host_gpus": "1 x H100", "model": "llama"},
        {"job": "1", "status": "ok", "host_gpus": "1 x H100", "model": "llama"},
        {"job": "2", "status": "failed", "host_gpus": "1 x A100", "model": None},  # failed on another node
    ]
    assert constant_columns(rows, keep={"job", "status"}) == {"model": "llama"}


def test_gpu_clocks_and_busy_share_come_from_the_slowest_gpu_and_older_records_leave_them_empty():
    """A split model runs at its slowest GPU's pace; records from before mem_clock_mhz and utilization_percent
    (calls of earlier sessions) still flatten, with those columns empty."""
    from runner.record import Record
    from runner.report.collect import flatten

    def device(sm, mem=None, busy=None):
        figures = {"device_used_peak_bytes": 2**30, "sm_clock_mhz": {"mean": sm}}
        if mem is not None:
            figures |= {"mem_clock_mhz": {"mean": mem}, "utilization_percent": {"mean": busy}}
        return figures

    def row(*devices):
        nvml = {"available": True, "devices": {f"cuda:{i}": d for i, d in enumerate(devices)}}
        return flatten(Record.from_dict({"status": "ok", "memory": {"nvml": nvml}}))

    split = row(device(1980, 3201, 96.04), device(1755, 2619, 71.26))
    assert (split["sm_clock_MHz"], split["mem_clock_MHz"], split["gpu_busy_%"]) == (1755, 2619, 71.3)
    older = row(device(1980))
    assert (older["sm_clock_MHz"], older["mem_clock_MHz"], older["gpu_busy_%"]) == (1980, None, None)
