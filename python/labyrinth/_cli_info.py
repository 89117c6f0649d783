"""``labyrinth info``: what this machine, kernel and user allow (the
memlock limit and the largest pool it pins, THP, io_uring, protection keys,
NUMA, CPU mitigations)."""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import resource
import sys
from pathlib import Path
from typing import Any

from . import PAGE_SIZE, Pool, __version__, abi_version
from .errors import LabyrinthError, Unsupported


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _cpu_flags() -> set[str]:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _cap_ipc_lock() -> bool | None:
    text = _read("/proc/self/status") or ""
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & (1 << 14))
    return None


def _locked_bytes() -> int | None:
    """Memory this process has locked already (VmLck), charged to the same limit."""
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1]) * 1024
    return None


def _pkey_alloc_works() -> str:
    if platform.machine() != "x86_64":
        return "unknown (not x86_64)"
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_pkey_alloc, SYS_pkey_free = 330, 331
    key = libc.syscall(SYS_pkey_alloc, 0, 0)
    if key >= 0:
        libc.syscall(SYS_pkey_free, key)
        return "yes"
    return f"no ({os.strerror(ctypes.get_errno())})"


def gather_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "labyrinth": {"version": __version__, "abi": f"{abi_version() >> 16}.{(abi_version() >> 8) & 0xFF}."
                      f"{abi_version() & 0xFF}"},
        "python": sys.version.split()[0],
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)

    def lim(v: int) -> str | int:
        return "unlimited" if v == resource.RLIM_INFINITY else v

    cap = _cap_ipc_lock()
    locked = _locked_bytes()
    if cap or soft == resource.RLIM_INFINITY:
        pinnable: str | int = "unlimited"
    else:
        pinnable = max(0, (soft - (locked or 0)) // PAGE_SIZE * PAGE_SIZE)
    info["memlock"] = {"soft_bytes": lim(soft), "hard_bytes": lim(hard), "cap_ipc_lock": cap,
                       "uid": os.getuid(), "locked_bytes": locked, "pinnable_pool_bytes": pinnable}
    info["thp"] = {
        "enabled": _read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "defrag": _read("/sys/kernel/mm/transparent_hugepage/defrag"),
    }
    flags = _cpu_flags()
    info["pkeys"] = {"cpu_pku": "pku" in flags, "os_pke": "ospke" in flags, "pkey_alloc": _pkey_alloc_works()}
    nodes = sorted(p.name for p in Path("/sys/devices/system/node").glob("node[0-9]*"))
    info["numa_nodes"] = len(nodes)
    vdir = Path("/sys/devices/system/cpu/vulnerabilities")
    info["cpu_vulnerabilities"] = {p.name: _read(str(p)) for p in sorted(vdir.glob("*"))} if vdir.is_dir() else {}

    # What the library itself can do here: a small pool (unpinned: pinning
    # is reported from the limit above, not from a probe), then a ring.
    uring: dict[str, Any] = {"io_uring_disabled_sysctl": _read("/proc/sys/kernel/io_uring_disabled")}
    try:
        with Pool(64 * PAGE_SIZE, pin=False) as pool:
            s = pool.stats()
            info["pool"] = {"created": True, "huge_pages_accepted": bool(s.huge_pages)}
            try:
                with pool.ring(sq_entries=8) as ring:
                    uring["available"] = True
                    uring["fixed_buffers"] = ring.stats().fixed_buffers
            except LabyrinthError as exc:
                uring["available"] = False
                uring["reason"] = str(exc)
            if uring.get("available"):
                try:
                    with pool.ring(sq_entries=8, pbuf_entries=8):
                        uring["provided_buffer_rings"] = True
                except LabyrinthError as exc:
                    uring["provided_buffer_rings"] = False
                    uring["provided_buffer_rings_reason"] = str(exc)
    except LabyrinthError as exc:
        info["pool"] = {"created": False, "error": str(exc)}
    info["io_uring"] = uring
    try:
        Pool(16 * PAGE_SIZE, pkeys=True, pin=False).close(force=True)
        info["pkeys"]["library"] = "supported"
    except Unsupported as exc:
        info["pkeys"]["library"] = f"unsupported: {exc.message}"
    return info


def cmd_info(args: argparse.Namespace) -> int:
    info = gather_info()
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    lab = info["labyrinth"]
    print(f"labyrinth {lab['version']} (ABI {lab['abi']}), Python {info['python']}, "
          f"Linux {info['kernel']} {info['machine']}, {info['cpus']} CPUs, {info['numa_nodes']} NUMA node(s)")
    ml = info["memlock"]
    print(f"memlock limit: soft {ml['soft_bytes']}, hard {ml['hard_bytes']} bytes; "
          f"CAP_IPC_LOCK {'yes' if ml['cap_ipc_lock'] else 'no'} (uid {ml['uid']})")
    pinnable = ml["pinnable_pool_bytes"]
    if pinnable == "unlimited":
        print("pinned pools: any size (memory permitting)")
    else:
        print(f"pinned pools: up to {pinnable:,} bytes ({pinnable / (1 << 20):.1f} MiB) in all, "
              f"{ml['locked_bytes'] or 0:,} bytes already locked; larger pools run unpinned with --pin auto "
              f"(the default) and fail with --pin strict")
    pool = info.get("pool", {})
    if pool.get("created"):
        print(f"pool: yes; transparent huge pages accepted: {'yes' if pool['huge_pages_accepted'] else 'no'}")
    else:
        print(f"pool: NO: {pool.get('error')}")
    print(f"THP: enabled {info['thp']['enabled']}; defrag {info['thp']['defrag']}")
    u = info["io_uring"]
    if u.get("available"):
        pb = u.get("provided_buffer_rings")
        print(f"io_uring: available (arena registered as {u.get('fixed_buffers')} fixed buffer(s)); "
              f"provided-buffer rings: {'yes' if pb else 'no: ' + str(u.get('provided_buffer_rings_reason'))}")
    else:
        print(f"io_uring: NOT available: {u.get('reason')} (sysctl io_uring_disabled={u.get('io_uring_disabled_sysctl')})")
    pk = info["pkeys"]
    print(f"memory protection keys: CPU {'yes' if pk['cpu_pku'] else 'no'}, OS {'yes' if pk['os_pke'] else 'no'}, "
          f"pkey_alloc {pk['pkey_alloc']}; library: {pk['library']}")
    vul = info["cpu_vulnerabilities"]
    if vul:
        affected = {k: v for k, v in vul.items() if v and not v.startswith("Not affected")}
        print("CPU side-channel mitigations (they change timings): "
              + ("; ".join(f"{k}: {v}" for k, v in affected.items()) or "none reported"))
    return 0
