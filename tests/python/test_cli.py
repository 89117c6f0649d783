"""The command line: python -m labyrinth (and the console script)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labyrinth.workload import Trace, TraceEvent


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labyrinth", *args], capture_output=True, text=True,
                          timeout=120)


def test_info_json() -> None:
    r = cli("info", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert {"memlock", "thp", "pkeys", "io_uring", "kernel", "labyrinth"} <= set(info)
    assert "available" in info["io_uring"]
    assert info["pkeys"]["library"].startswith(("supported", "unsupported"))


def test_info_text() -> None:
    r = cli("info")
    assert r.returncode == 0, r.stderr
    for word in ("memlock", "io_uring", "THP", "protection keys"):
        assert word in r.stdout


def test_stress_json_and_save(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    r = cli("stress", "-d", "0.2", "-t", "2", "--orders", "0:0.9,1:0.1", "--burst", "uniform:1:4",
            "--lifetime", "exp:16", "--transfer", "0.2", "--json", "--save", str(out), "--pool-size", "8M")
    assert r.returncode == 0, r.stderr
    brief = json.loads(r.stdout)
    assert brief["threads"] == 2 and brief["calls"]["alloc_atomic"] > 0
    assert "p99_ns" in brief["latency_ns"]["alloc_atomic"]
    full = json.loads(out.read_text())
    assert full["format"] == "labyrinth.workload.Result/1"


def test_stress_table() -> None:
    r = cli("stress", "-d", "0.1", "--pool-size", "4M")
    assert r.returncode == 0, r.stderr
    assert "alloc_atomic" in r.stdout and "p99.9_ns" in r.stdout and "failures:" in r.stdout


def test_replay(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    Trace([TraceEvent("alloc", 0, 1), TraceEvent("transfer", 0, 1, to=1), TraceEvent("free", 1, 1)]).save(trace)
    r = cli("replay", str(trace), "--json", "--pool-size", "1M")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["calls"] == {"alloc_atomic": 1, "alloc_wait": 0, "free": 1, "transfer": 1}
    assert all(not f for f in res["failures"].values())


def test_bench_quick() -> None:
    r = cli("bench", "-d", "0.05", "--only", "pair", "remote", "--pool-size", "8M")
    assert r.returncode == 0, r.stderr
    assert "pair" in r.stdout and "remote" in r.stdout and "M calls/s" in r.stdout


def test_demo() -> None:
    r = cli("demo")
    assert r.returncode == 0, r.stderr
    for word in ("Busy", "NotOwner", "InvalidArgument", "freed by its new owner"):
        assert word in r.stdout


def test_errors_are_reported() -> None:
    r = cli("stress", "-d", "0.1", "--pool-size", "4097")
    assert r.returncode == 1 and "LABYRINTH_ERR_INVALID" in r.stderr
    r = cli("stress", "--burst", "bogus")
    assert r.returncode == 2 and "bad distribution" in r.stderr


def test_console_script() -> None:
    exe = shutil.which("labyrinth")
    if exe is None:
        pytest.skip("the labyrinth console script is not on PATH (package not pip-installed)")
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("labyrinth ")
