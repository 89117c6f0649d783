"""The command line: python -m labyrinth (and the console script)."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labyrinth.cli import build_parser
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


@pytest.mark.parametrize("every", ["4096", "2", "4095"])
def test_latency_sampling_times_allocs_and_frees_for_any_period(every: str) -> None:
    # lifetime 0: every step allocates then frees, so one shared counter with
    # an even period timed only the frees.
    r = cli("stress", "-t", "1", "--lifetime", "0", "--latency-every", every, "--steps", "40000",
            "--pool-size", "4M", "--json", "--full")
    assert r.returncode == 0, r.stderr
    lat = json.loads(r.stdout)["latency"]
    n_alloc, n_free = sum(lat["alloc_atomic"]["counts"]), sum(lat["free"]["counts"])
    # The last block is freed by the untimed drain at the end.
    assert n_alloc == 40000 // int(every) and (39999 // int(every)) == n_free, (n_alloc, n_free)


@pytest.mark.parametrize("args,word", [
    (("stress", "--threads", "-1"), "--threads"),
    (("stress", "--duration", "-1"), "--duration"),
    (("stress", "--seed", "x"), "--seed"),
    (("stress", "--latency-every", "0"), "--latency-every"),
    (("stress", "--transfer", "2"), "--transfer"),
    (("stress", "--pin", "maybe"), "--pin"),
])
def test_bad_options_are_argparse_errors(args: tuple[str, ...], word: str) -> None:
    r = cli(*args)
    assert r.returncode == 2 and word in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_help_texts() -> None:
    r = cli("replay", "--help")
    assert r.returncode == 0 and "trace format" in r.stdout and "timeout_ms" in r.stdout
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        assert command.description, name
        for action in command._actions:
            assert action.help, f"{name} {'/'.join(action.option_strings) or action.dest}: no help text"


def test_info_reports_the_memlock_limit_not_a_probe() -> None:
    r = cli("info", "--json")
    ml = json.loads(r.stdout)["memlock"]
    assert "pinnable_pool_bytes" in ml
    assert "pinned pool: yes" not in cli("info").stdout


def test_replay_parses_a_large_csv_quickly(tmp_path: Path) -> None:
    trace = tmp_path / "big.csv"
    rows = ["op,thread,block,order,flags,to"]
    for i in range(100_000):
        rows.append(f"alloc,0,{i},0,atomic|exclusive,")
        rows.append(f"free,0,{i},,,")
    trace.write_text("\n".join(rows) + "\n")
    loaded = Trace.load(trace)
    assert len(loaded) == 200_000 and loaded.threads == 1
    assert loaded.events[1] == TraceEvent("free", 0, 0)
    r = cli("replay", str(trace), "--json", "--pool-size", "1M")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["calls"]["free"] == 100_000


def test_ctrl_c_prints_the_partial_result() -> None:
    import signal
    import time

    p = subprocess.Popen([sys.executable, "-m", "labyrinth", "stress", "-d", "60", "--pool-size", "4M"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # interpreter start-up and the pool; then the run goes on
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "INTERRUPTED" in out and "alloc_atomic" in out, out + err
