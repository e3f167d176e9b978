"""Reports: strict JSON, the Markdown table, PNG plots."""

import json
import math

import pytest

from pointmap.eval.report import EvalResult, Plot, save_result, to_json, to_markdown


def result() -> EvalResult:
    records = [
        {"method": "a", "item": "x", "group": "g", "err": 1.0},
        {"method": "a", "item": "y", "group": "g", "err": math.inf},
        {"method": "b", "item": "x", "group": "g", "err": math.nan},
    ]
    summary = [{"method": "a", "group": "all", "n": 2, "err": 12.345, "small": 0.01234},
               {"method": "b", "group": "all", "n": 1, "err": math.nan, "small": math.inf}]
    return EvalResult("toy", {"seed": 0}, records, summary, ("n", "err", "small"), (Plot("err", "error (deg)", 5.0),))


def test_json_is_strict_and_keeps_failures():
    document = json.loads(to_json(result()), parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    assert document["records"][1]["err"] == "inf" and document["records"][2]["err"] is None
    assert document["plots"] == [{"key": "err", "label": "error (deg)", "limit": 5.0}]


def test_markdown_table_cells():
    lines = to_markdown(result()).splitlines()
    assert lines[0] == "### toy"
    assert lines[2] == "| method | group | n | err | small |"
    assert lines[4] == "| a | all | 2 | 12.3 | 0.012 |"
    assert lines[5] == "| b | all | 1 | - | inf |"


def test_save_result_writes_table_json_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    written = save_result(result(), tmp_path / "out")
    assert [p.name for p in written] == ["results.json", "results.md", "err.png"]
    assert (tmp_path / "out" / "err.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
