#!/usr/bin/env bash
# Valgrind memcheck over the C ABI test program and the core GoogleTest
# programs of the main build ($BUILD_DIR, built by stage 10): no invalid
# access, no use of uninitialised memory, no definite leak (exit status 1
# on any error).
#
# Left out, with the reason:
#  - atomic_context_test: a seccomp filter that kills on any system call
#    (valgrind makes its own) and signal storms timed against the real CPU.
#  - process_test: its point is a forked child's SIGSEGV; memcheck adds
#    nothing there.
#  - the io_uring tests: memcheck cannot see the kernel writing into pages
#    through io_uring, so it would report reads of "uninitialised" received
#    data; those paths run under ASan and TSan in stage 70 instead.
#  - death tests (*DeathTest.*): they fault or abort on purpose.
#  - Poison.ChurnOnEveryPathGivesNoFalseReport: minutes under memcheck; it
#    runs under ASan and TSan in stage 70.
# Memcheck knows nothing of the arena's own allocation (pages are carved
# out of one mmap), so it checks the library's heap use and the tests'
# memory, not page-level use after free: that is what POISON and GUARD are
# for (tests/reliability).
set -uo pipefail
cd "$LABYRINTH_ROOT"
B="${BUILD_DIR:-build}"
if ! command -v valgrind >/dev/null; then
  echo "80-valgrind: SKIP: valgrind is not installed (scripts/deps.sh installs it)"; exit 77
fi
VG=(valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
    --track-origins=yes --child-silent-after-fork=yes)

progs=("$B/tests/c/abi_test")
for t in misuse_test ownership_test options_test buddy_test thread_cache_test reserve_test \
         wait_test concurrency_test inline_test cpp_wrapper_test; do
  progs+=("$B/tests/cpp/$t")
done
[ -x "$B/tests/reliability/reliability_test" ] && progs+=("$B/tests/reliability/reliability_test")

fail=0; ran=0
for prog in "${progs[@]}"; do
  if [ ! -x "$prog" ]; then echo "80-valgrind: $prog is not built (stage 10 builds it)"; fail=1; continue; fi
  args=()
  case "$prog" in
    *abi_test) ;;
    # The POISON churn (three threads filling and checking every page) takes
    # minutes under memcheck; ASan and TSan run it in stage 70.
    *reliability_test) args=(--gtest_brief=1 --gtest_filter=-*DeathTest.*:Poison.Churn*) ;;
    *) args=(--gtest_brief=1 --gtest_filter=-*DeathTest.*) ;;
  esac
  t0=$(date +%s)
  out=$("${VG[@]}" "$prog" "${args[@]}" 2>&1); rc=$?
  ran=$((ran + 1))
  if [ "$rc" = 0 ]; then
    echo "80-valgrind: $(basename "$prog"): clean ($(( $(date +%s) - t0 ))s)"
  else
    echo "$out" | tail -60
    echo "80-valgrind: $(basename "$prog"): FAILED (rc=$rc)"; fail=1
  fi
done
echo "80-valgrind: $ran program(s) under memcheck"
exit $fail
