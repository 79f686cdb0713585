"""The typed record: results.json reads back as types and writes back unchanged, carries a schema version, keeps
sections it does not know, and records written before the version existed still make a sweep report."""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path

import pytest

from runner.record import SCHEMA_VERSION, Record
from runner.report.__main__ import main as report_main

FIXTURES = Path(__file__).parent / "fixtures"
OLD = {name: json.loads((FIXTURES / f"record_v0_{name}.json").read_text()) for name in ("forward", "generate")}


@pytest.mark.parametrize("name", sorted(OLD))
def test_an_old_record_reads_as_types_and_writes_back_unchanged(name):
    record = Record.from_dict(copy.deepcopy(OLD[name]))
    assert record.version == 0 and record.ok and record.model.name == "tiny-llama"
    measured = record.measurements.scenarios()[name]
    first = next(iter(measured.phases().values()))
    assert first.mean == next(v for v in OLD[name]["measurements"][name].values() if "mean" in v)["mean"]
    assert json.dumps(record.to_dict()) == json.dumps(OLD[name])  # same keys, same order, same figures


def test_unknown_sections_and_fields_pass_through():
    data = copy.deepcopy(OLD["forward"])
    data["quality"] = {"perplexity": 12.5, "dataset": "wikitext"}  # a section another stage adds
    data["model"]["quantization"] = {"method": "torchao", "by_scheme": {"int8wo": 4}}
    data["measurements"]["forward"]["latency"]["p999"] = 0.5  # a figure the type does not declare
    record = Record.from_dict(copy.deepcopy(data))
    assert record.to_dict() == data
    assert record.get("quality") == {"perplexity": 12.5, "dataset": "wikitext"} and record.get("nothing", {}) == {}


def test_a_new_record_has_the_schema_version_first(run_job):
    record = run_job("pipeline=load_only")
    assert list(record)[0] == "schema_version" and record["schema_version"] == SCHEMA_VERSION
    on_disk = json.loads((Path(record["run_dir"]) / "results.json").read_text())
    assert on_disk == record


def test_old_records_make_the_same_report(tmp_path):
    for n, name in enumerate(sorted(OLD)):
        (tmp_path / str(n)).mkdir()
        shutil.copy(FIXTURES / f"record_v0_{name}.json", tmp_path / str(n) / "results.json")
    assert report_main([str(tmp_path), "--no-plots"]) == 0
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    forward, generate = rows
    latency = OLD["forward"]["measurements"]["forward"]["latency"]
    assert float(forward["forward_ms"]) == pytest.approx(latency["mean"] * 1e3)
    assert float(forward["forward_p90_ms"]) == pytest.approx(latency["p90"] * 1e3)
    phases = OLD["generate"]["measurements"]["generate"]
    assert float(generate["per_token_ms"]) == pytest.approx(phases["per_token"]["mean"] * 1e3)
    assert float(generate["decode_GBs"]) == pytest.approx(OLD["generate"]["roofline"]["decode"]["achieved_gbs"])
    assert forward["ran"] == "sdpa (flash)" and forward["agrees"] == "True"


def test_onnx_runtime_records_that_kept_the_session_figures_in_convert_only_still_report_them():
    """Records an ONNX Runtime run wrote at 5a403aa..cf6b52c: no model.footprint_bytes / load_time_s, the graph's
    size and the session's load time in convert.onnx. The console and summary.csv read them from there."""
    old = {"model": {"name": "tiny-bert"}, "convert": {"onnx": {"bytes": 12345, "session_load_time_s": 0.25}}}
    record = Record.from_dict(copy.deepcopy(old))
    assert (record.footprint_bytes(), record.load_time_s()) == (12345, 0.25)
    now = {"model": {"name": "tiny-bert", "footprint_bytes": 999, "load_time_s": 0.5}, "convert": old["convert"]}
    assert (Record.from_dict(now).footprint_bytes(), Record.from_dict(now).load_time_s()) == (999, 0.5)
