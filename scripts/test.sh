#!/usr/bin/env bash
# test.sh — THE test command: installs dependencies, then configures, builds
# and runs CTest in three builds: normal (build/), ASan+UBSan (build-asan/) and
# libFuzzer smoke runs (build-fuzz/). Every build runs even if an earlier one
# failed; the exit status is non-zero if any configure, build or test failed.
# The normal build's CTest run includes package.deb (tests/package/test_deb.sh):
# cpack -G DEB, lintian, the package extracted into a scratch root and its
# binary run with --version (docs/install.md).
#
# Environment: WALREV_FUZZ_SECONDS (default 60) per fuzz target;
# WALREV_CTEST_JOBS (default 1: the integration tests share one cluster and
# some share object names such as the default slot); WALREV_ASAN_EXCLUDE, a CTest -E regex of
# tests the ASan build skips (default: none); WALREV_SKIP_FUZZ=1 skips the
# fuzz build; CC picks the compiler of the normal and ASan builds.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh || exit 1

jobs=$(nproc)
ctest_jobs=${WALREV_CTEST_JOBS:-1}
fuzz_seconds=${WALREV_FUZZ_SECONDS:-60}
t_start=$(date +%s)
failed=()
summaries=()

# run_build NAME DIR "cmake args" "ctest args" [build targets...]
run_build() {
  local name=$1 dir=$2 cmake_args=$3 ctest_args=$4
  shift 4
  local t0 log
  t0=$(date +%s)
  log=$dir/test.log
  mkdir -p "$dir"
  echo "==== $name: configure ($dir)"
  # shellcheck disable=SC2086
  if ! cmake -S "$root" -B "$dir" $cmake_args >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log"
    failed+=("$name: configure")
    summaries+=("$name: configure failed")
    return
  fi
  echo "==== $name: build"
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  if ! cmake --build "$dir" -j"$jobs" "${targets[@]}" >"$dir/build.log" 2>&1; then
    grep -E 'error|Error' "$dir/build.log" | head -40
    failed+=("$name: build")
    summaries+=("$name: build failed (see $dir/build.log)")
    return
  fi
  echo "==== $name: ctest $ctest_args"
  # shellcheck disable=SC2086
  (cd "$dir" && ctest --output-on-failure -j"$ctest_jobs" $ctest_args) 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || failed+=("$name: tests")
  local line
  line=$(grep -E 'tests passed|No tests were found' "$log" | tail -1)
  summaries+=("$name: ${line:-no summary} ($(( $(date +%s) - t0 ))s)")
}

run_build normal build "-DWALREV_WERROR=ON" ""

# valgrind over every unit and golden test binary of the normal build: the
# pure modules (decoder, assembler, caches, codecs, config) must stay clean.
t0=$(date +%s)
vg_fail=0; vg_count=0
for bin in build/tests/unit_test_* build/tests/golden_test_* build/tests/seeds_fuzz_*; do
  [ -x "$bin" ] || continue
  # a ThreadSanitizer build (its own race check) cannot run under valgrind
  case "$bin" in *_tsan) continue ;; esac
  vg_count=$((vg_count + 1))
  args=()
  case "$bin" in
    *golden_*) args=("$root/tests/golden") ;;
    *seeds_fuzz_*)
      t=${bin##*/seeds_}
      if [ -d "$root/tests/fuzz/seeds/$t" ]; then args=("$root/tests/fuzz/seeds/$t"); else args=("$root/tests/fuzz/seeds"); fi ;;
  esac
  if ! valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
       "$bin" "${args[@]}" >"build/valgrind-$(basename "$bin").log" 2>&1; then
    echo "valgrind: $bin failed:"; tail -30 "build/valgrind-$(basename "$bin").log"
    vg_fail=$((vg_fail + 1))
  fi
done
[ "$vg_fail" = 0 ] || failed+=("valgrind")
summaries+=("valgrind: $((vg_count - vg_fail)) passed, $vg_fail failed ($(( $(date +%s) - t0 ))s)")

asan_exclude=${WALREV_ASAN_EXCLUDE:-}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_build asan build-asan "-DWALREV_SANITIZE=ON -DWALREV_WERROR=ON -DCMAKE_BUILD_TYPE=Debug" \
  "${asan_exclude:+-E $asan_exclude}"
unset ASAN_OPTIONS UBSAN_OPTIONS

if [ "${WALREV_SKIP_FUZZ:-0}" != 1 ]; then
  # Only the fuzz targets are built here: the other tests ran in the two builds above.
  fuzz_targets=()
  if CC=clang cmake -S "$root" -B build-fuzz -DWALREV_FUZZ=ON -DWALREV_FUZZ_SECONDS="$fuzz_seconds" \
       >/dev/null 2>&1; then
    mapfile -t fuzz_targets < <(cmake --build build-fuzz --target help 2>/dev/null \
                                  | sed -n 's/^\.\.\. \(fuzz_[A-Za-z0-9_]*\).*/\1/p')
  fi
  if [ ${#fuzz_targets[@]} -eq 0 ]; then
    fuzz_targets=(all)
  fi
  CC=clang run_build fuzz build-fuzz "-DWALREV_FUZZ=ON -DWALREV_FUZZ_SECONDS=$fuzz_seconds" \
    "-R ^fuzz\." "${fuzz_targets[@]}"
fi

echo
echo "==== summary"
for s in "${summaries[@]}"; do echo "  $s"; done
echo "  total time: $(( $(date +%s) - t_start ))s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "  FAILED: ${failed[*]}"
  exit 1
fi
echo "  all passed"
