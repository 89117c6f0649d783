#!/usr/bin/env bash
# Sanitizers: the whole ctest suite (core GoogleTest programs, the C ABI test,
# the io_uring tests, tests/reliability) built and run twice, in build dirs of
# their own:
#   ${BUILD_DIR}-asan   -fsanitize=address,undefined  (ASan + LeakSanitizer + UBSan)
#   ${BUILD_DIR}-tsan   -fsanitize=thread
# Zero reports allowed: every sanitizer halts on its first report (the
# test then fails), and afterwards the full test log is searched for report
# text, so a report printed by a test that still exited 0 (e.g. from a forked
# child) fails the stage too.
# A few tests cannot mean anything under a sanitizer; they are listed, with
# the reason, at the bottom. c_abi_installed is skipped by CMake in
# sanitizer builds (a plain program cannot load a sanitized library).
# Environment: LABYRINTH_SANITIZERS="asan tsan" (default both) picks the runs.
set -uo pipefail
cd "$LABYRINTH_ROOT"
B="${BUILD_DIR:-build}"
JOBS="${LABYRINTH_JOBS:-2}"
which_runs="${LABYRINTH_SANITIZERS:-asan tsan}"

# Report headers of every sanitizer we use.
REPORT_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|ThreadSanitizer: |runtime error: |UndefinedBehaviorSanitizer|SUMMARY: (Address|Thread|UndefinedBehavior|Leak)Sanitizer'

export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="report_objects=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:report_signal_unsafe=1"

fail=0
# ctest_pass DIR LABEL EXTRA_OPTION CTEST-ARGS...: one ctest run; fails the
# stage on a test failure or on any report text in the full test log.
ctest_pass() {
  local dir=$1 label=$2 extra=$3; shift 3
  local out rc t0 t1
  t0=$(date +%s)
  out=$(ASAN_OPTIONS="$ASAN_OPTIONS$extra" TSAN_OPTIONS="$TSAN_OPTIONS$extra" \
        ctest --test-dir "$dir" --output-on-failure -j"$JOBS" --timeout 300 "$@" 2>&1); rc=$?
  t1=$(date +%s)
  local log="$dir/Testing/Temporary/LastTest.log" reports=0
  if [ -f "$log" ]; then reports=$(grep -cE "$REPORT_RE" "$log"); else reports=unknown; fi
  if echo "$out" | grep -q "No tests were found"; then
    echo "--- $label: no tests matched"; return
  fi
  local summary; summary=$(echo "$out" | grep -oE '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' | head -1)
  if [ "$rc" != 0 ]; then
    # What failed, and why (the failing tests' own output).
    echo "$out" | grep -E -A30 "^\[ RUN|Failure$" | grep -vE "^\[( +OK|----------)" | head -80
    echo "$out" | sed -n '/The following tests FAILED/,$p'
    echo "70-sanitizers: $label: ctest failed (rc=$rc)"; fail=1
  fi
  if [ "$reports" != 0 ]; then
    [ -f "$log" ] && grep -nE -B2 -A25 "$REPORT_RE" "$log" | head -150
    echo "70-sanitizers: $label: $reports sanitizer report line(s) in the test log"; fail=1
  fi
  echo "--- $label: $summary; sanitizer reports: $reports; $((t1 - t0))s"
}

# run_one NAME SANITIZE EXCLUDE FAULT_TESTS
#   EXCLUDE      tests that cannot be meaningful under this sanitizer (why: above each call)
#   FAULT_TESTS  tests whose point is a SIGSEGV (a child or a death test faults on
#                purpose): run in a second pass with handle_segv=0, so the signal
#                reaches the test as it would without the sanitizer instead of
#                becoming a sanitizer report. Every other sanitizer check stays on.
run_one() {
  local name=$1 sanitize=$2 exclude=$3 faults=$4
  local dir="${B}-${name}"
  local t0; t0=$(date +%s)
  echo "--- $name: configure and build $dir (-fsanitize=$sanitize, -j$JOBS)"
  mkdir -p "$dir"  # logs stay inside the build dir (ignored by git)
  if ! cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo --no-warn-unused-cli \
        -DLABYRINTH_SANITIZE="$sanitize" -DLABYRINTH_BUILD_EXAMPLES=OFF >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log"; echo "70-sanitizers: $name configure failed"; fail=1; return
  fi
  if ! cmake --build "$dir" -j"$JOBS" >"$dir/build.log" 2>&1; then
    tail -40 "$dir/build.log"; echo "70-sanitizers: $name build failed"; fail=1; return
  fi
  echo "--- $name: built in $(( $(date +%s) - t0 ))s"
  echo "--- $name: excluded: $exclude"
  ctest_pass "$dir" "$name (all but faulting and signal-heavy tests)" "" -E "$exclude|$faults|$SIGNAL_HEAVY"
  ctest_pass "$dir" "$name (faulting tests, handle_segv=0)" ":handle_segv=0" -R "$faults" -E "$exclude"
  ctest_pass "$dir" "$name (signal-heavy tests, alone)" "" -R "$SIGNAL_HEAVY" -E "$exclude" -j1
}

# Signal-heavy: AtomicContext.SignalHandlerAllocatesWhileInterruptedThreadIsInside
# has a thread send signals as fast as it can for at least 2 s, and on until
# the handler has run often enough and interrupted the allocator (60 s at
# most). It runs alone so that its sender does not slow the other tests,
# and once: it waits for its evidence instead of running for a fixed time.
SIGNAL_HEAVY='^AtomicContext\.SignalHandler'


# Tests that are meaningless under a sanitizer:
#  - Options.MemlockFailureNamesLimitAndSize, Options.StrictPinRefused...,
#    Options.BestEffortPin...: ASan and TSan replace mlock() with a no-op that
#    returns 0, so the RLIMIT_MEMLOCK refusal never happens.
#  - xdp_installed: it builds a program without the sanitizer against the
#    installed (sanitized) libraries, which ASan refuses to load that way.
#  - AtomicContext.* (TSan only): a seccomp filter that kills on any system
#    call, and allocation inside signal handlers; TSan's runtime makes system
#    calls of its own and defers signals.
#  - Fork.ChildCannotTouchTheParentsPages (TSan only): TSan's runtime maps its
#    own memory in the forked child, reusing the hole MADV_DONTFORK left, so
#    the child reads a zero page of TSan's instead of faulting (it still never
#    sees the parent's data).
NOT_UNDER_SANITIZERS='^Options\.MemlockFailureNamesLimitAndSize$|^Options\.StrictPinRefusedNamesLimitSizeAndFix$|^Options\.BestEffortPinRunsUnpinnedWithOneWarning$|^xdp_installed$'
FAULTS='^Fork\.ChildCannotTouchTheParentsPages$|DeathTest\.'
for r in $which_runs; do
  case $r in
    asan) run_one asan "address,undefined" "$NOT_UNDER_SANITIZERS" "$FAULTS" ;;
    tsan) run_one tsan "thread" \
            "$NOT_UNDER_SANITIZERS|^AtomicContext\.|^Fork\.ChildCannotTouchTheParentsPages\$" \
            'DeathTest\.' ;;
    *) echo "70-sanitizers: unknown run '$r' (asan, tsan)"; fail=1 ;;
  esac
done
exit $fail
