#!/usr/bin/env python3
"""Write the hand-made seeds of the fuzz targets:
  fuzz/seeds/pool/   one program per pool shape (plain, SCRUB, GUARD, POISON,
                     no caches, tiny caches, watermarks, short options struct,
                     power-of-two sizes, big pools whose caches' high marks
                     can rise) and per theme (exhaustion, transfers,
                     orphans, misuse, destroy and re-create);
  fuzz/seeds/uring/  one program per ring shape (queue sizes, max_inflight,
                     provided-buffer ring, MANUAL_REFILL, NO_REGISTER) and theme.
The byte layouts are the ones the harnesses read (fuzz_pool.cpp:
Fuzz::choose_options() and Fuzz::run(); fuzz_uring.cpp: setup(), make_ring(),
run()). Deterministic: the same files every time."""
import os, random, sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
out = os.path.join(root, "pool")
os.makedirs(out, exist_ok=True)

OPS = {"alloc": 0, "free": 3, "transfer": 5, "info": 6, "halloc": 7, "hfree": 8, "htransfer": 9,
       "trim": 10, "reclaim": 11, "dying": 12, "destroy": 13, "stats": 14, "null": 15,
       "badcreate": 16, "exhaust": 17, "freeall": 18}

def header(pages=200, pow2=None, scrub=False, guard=False, poison=False, reserve=None,
           wm=None, caches=1, cache_pages=16, batch=4, short=False):
    shape = (1 if pow2 is not None else 0) | (2 if short else 0)
    b = [shape]
    b += [(pages - 1) & 0xFF, ((pages - 1) >> 8) & 0xFF]
    if pow2 is not None:
        b.append(pow2)
    b.append((1 if scrub else 0) | (2 if guard else 0) | (4 if poison else 0))
    b.append(0x80 if reserve is None else reserve)
    if wm is None:
        b.append(0)
    else:
        b.append(3)
        for v in wm:
            b += [v & 0xFF, (v >> 8) & 0xFF]
    b += [caches, cache_pages - 1, batch - 1]
    return b

def program(rng, themes, n):
    ops = []
    for _ in range(n):
        name = rng.choice(themes)
        ops.append(OPS[name] + 20 * rng.randrange(0, 12))
        ops += [rng.randrange(256) for _ in range(6)]  # arguments (unused ones are the next op)
    return ops

rng = random.Random(6)
shapes = {
    "plain": dict(),
    "scrub": dict(scrub=True),
    "guard": dict(guard=True),
    "poison": dict(poison=True),
    "poison_scrub_guard": dict(poison=True, scrub=True, guard=True),
    "nocache": dict(caches=0),
    "tiny_cache": dict(cache_pages=1, batch=1, caches=3),
    "watermarks": dict(wm=(8, 20, 40), reserve=4),
    "short_opts": dict(short=True),
    "pow2_1024": dict(pow2=10),
    "one_page": dict(pages=1, reserve=0),
}
themes = {
    "mixed": list(OPS),
    "exhaust": ["exhaust", "alloc", "free", "freeall", "trim", "halloc"],
    "transfer": ["alloc", "transfer", "htransfer", "hfree", "halloc", "dying", "reclaim"],
    "orphans": ["dying", "reclaim", "alloc", "transfer", "trim"],
    "misuse": ["free", "info", "null", "badcreate", "stats", "destroy", "transfer"],
    "lifecycle": ["alloc", "freeall", "destroy", "trim", "alloc", "free"],
}
count = 0
for sname, kw in shapes.items():
    for tname, th in themes.items():
        data = bytes(header(**kw) + program(rng, th, rng.randrange(20, 60)))
        with open(os.path.join(out, f"{sname}-{tname}"), "wb") as f:
            f.write(data[:512])
        count += 1

# Big pools (32-48 MiB, caches up to 2048 pages), where a cache's high mark
# can rise: shape bits 0xFC, one byte for the size (8192 + 256 * (b % 17)
# pages), and the cache's pages as 16 bits. Their own generator, so the seeds
# above stay as they were.
def big_header(size_step, cache_pages, batch, caches=1, pin=False):
    b = [0xFC, 0, 0, size_step, (0x30 if pin else 0), 0x80, 0]
    b += [caches, (cache_pages - 1) & 0xFF, ((cache_pages - 1) >> 8) & 0xFF, batch - 1]
    return b

big_rng = random.Random(16)
big_shapes = {
    "big_growth": dict(size_step=16, cache_pages=2048, batch=64),
    "big_pinned": dict(size_step=8, cache_pages=1500, batch=32, pin=True),
}
for sname, kw in big_shapes.items():
    for tname in ("exhaust", "lifecycle"):
        data = bytes(big_header(**kw) + program(big_rng, themes[tname], big_rng.randrange(20, 60)))
        with open(os.path.join(out, f"{sname}-{tname}"), "wb") as f:
            f.write(data[:512])
        count += 1
print(f"make_seeds: {count} seeds in {out}")

# ---- fuzz_uring ----
out = os.path.join(root, "uring")
os.makedirs(out, exist_ok=True)
U = {"alloc": 0, "submit": 3, "complete": 6, "free": 8, "cancel": 9, "provide": 10,
     "notmine": 11, "freed": 12, "null": 13, "rering": 14}

def ring_bytes(sq_log2, max_inflight, pbuf_log2, manual=False, noreg=False):
    a = sq_log2 | (0x40 if max_inflight == 0 else 0) | (0x80 if manual else 0)
    b = (pbuf_log2 if pbuf_log2 is not None else 0x80) | (0x70 if noreg else 0)
    if not noreg and pbuf_log2 is not None:
        b &= 0x0F
    if max_inflight:
        b = (b & 0xF0) | ((max_inflight - 1) % 12) if (b & 0x0F) < 12 else b
    return [a, b]

rings = {
    "small": ring_bytes(1, 4, 2),
    "pbuf16": ring_bytes(4, 8, 4),
    "manual": ring_bytes(3, 0, 3, manual=True),
    "noreg": ring_bytes(2, 6, None, noreg=True),
    "sq1": ring_bytes(0, 1, 0),
}
uthemes = {
    "io": ["alloc", "alloc", "submit", "submit", "complete", "free"],
    "net": ["alloc", "submit", "submit", "complete", "complete", "provide", "cancel"],
    "misuse": ["alloc", "submit", "free", "notmine", "freed", "null", "cancel", "provide"],
    "teardown": ["alloc", "submit", "submit", "rering", "alloc", "submit", "complete"],
}
count = 0
for rname, rb in rings.items():
    for tname, th in uthemes.items():
        data = [rng.randrange(8), rng.randrange(256)] + rb
        for _ in range(rng.randrange(20, 50)):
            name = rng.choice(th)
            data.append(U[name] + 16 * rng.randrange(0, 16))
            data += [rng.randrange(256) for _ in range(4)]
        with open(os.path.join(out, f"{rname}-{tname}"), "wb") as f:
            f.write(bytes(data[:512]))
        count += 1
print(f"make_seeds: {count} seeds in {out}")

# ---- fuzz_slices ----
out = os.path.join(root, "slices")
os.makedirs(out, exist_ok=True)
S = {"send": 0, "complete": 2, "release": 3, "stale": 4, "transfer": 5, "misuse": 6, "destroy": 7}
srng = random.Random(24)

def slice_header(stream=False, order=0, entries_log2=1, starved=False, small_cq=False,
                 pool_pages=32, max_datagram=None):
    a = (1 if stream else 0) | (order << 1) | (entries_log2 << 3) | (0x20 if starved else 0)
    a |= 0x40 if small_cq else 0
    b = [a, (pool_pages - 16) % 48, 1 if max_datagram else 0]
    if max_datagram:
        m = max_datagram - 1
        b += [m & 0xFF, m >> 8]
    return b

def slice_program(theme, steps, small=False):
    data = []
    for _ in range(steps):
        name = srng.choice(theme)
        data.append(S[name] + 8 * srng.randrange(32))
        if name == "send":
            n = srng.randrange(1, 96) if small else srng.randrange(1, 65536)
            data += [n & 0xFF, n >> 8]
        elif name == "complete":
            data.append(1)
        else:
            data.append(srng.randrange(256))
    return data

sshapes = {
    "dgram64": (slice_header(entries_log2=0), True),
    "dgram-long": (slice_header(order=1, entries_log2=2), False),
    "max-datagram": (slice_header(entries_log2=1, max_datagram=1000), False),
    "stream": (slice_header(stream=True, order=1, starved=True), False),
    "small-cq": (slice_header(entries_log2=3, small_cq=True, pool_pages=60), True),
}
sthemes = {
    "release": ["send", "send", "complete", "release", "release"],
    "stale": ["send", "send", "complete", "release", "stale", "stale"],
    "owners": ["send", "complete", "transfer", "release", "misuse"],
    "teardown": ["send", "complete", "release", "destroy", "stale"],
}
count = 0
for sname, (hdr, small) in sshapes.items():
    for tname, th in sthemes.items():
        data = hdr + slice_program(th, srng.randrange(40, 120), small)
        with open(os.path.join(out, f"{sname}-{tname}"), "wb") as f:
            f.write(bytes(data[:512]))
        count += 1
print(f"make_seeds: {count} seeds in {out}")
