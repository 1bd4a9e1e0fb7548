"""The benchmark command runs end to end on a tiny data set, in two rounds, and writes its table (figures are not
checked, only that each reported one is its case's median round)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def test_benchmark_command_measures_every_part_and_writes_json_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--n", "1500", "--dim", "8", "--tune-points", "500",
         "--client-default-read-cap", "300", "--rounds", "2", "--out", str(out), "--work-dir", str(tmp_path)],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=240,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads((out / "run.json").read_text())
    measured = {(row["case"], row["operation"]) for row in report["results"]}
    assert measured == {
        ("http ceiling", "write"), ("http ceiling", "read"),
        ("spark data source", "write"), ("spark data source", "read"),
        ("write_qdrant_points", "write"),
        ("qdrant-client defaults", "write"), ("qdrant-client best", "write"),
        ("qdrant-client defaults", "read"), ("qdrant-client best", "read"),
        ("edge in-process", "write"), ("edge in-process", "read"),
    }
    assert all(row["verified"] for row in report["results"]), report["results"]
    assert len(report["rounds"]) == 2 and all(len(results) == len(report["results"]) for results in report["rounds"])
    for row in report["results"]:  # each figure is one of its case's rounds: the lower middle of two
        rates = row["details"]["rounds_points_per_second"]
        assert len(rates) == 2 and round(row["points_per_second"], 1) == min(rates)
    spark_read = next(r for r in report["results"] if r["case"] == "spark data source" and r["operation"] == "read")
    assert spark_read["points"] == 1500
    assert spark_read["ratios"]["vs ceiling"] > 0
    assert spark_read["memory"]["groups"]["jvm"]["rss_mb"] > 0
    assert spark_read["memory"]["groups"]["workers"]["processes"] >= 1
    table = (out / "run.md").read_text()
    assert "| spark data source | read | 1,500 |" in table
    assert "vs client defaults" in table
    assert any(note.startswith("The HTTP ceiling itself ran at") for note in report["notes"]), report["notes"]
