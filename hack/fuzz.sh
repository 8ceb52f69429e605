#!/usr/bin/env bash
# hack/fuzz.sh [FUZZTIME]: run every Go fuzz target in the module for
# FUZZTIME each (default 10s). Packages are found by their test files, then
# `go test -list` names the targets, so only packages that have fuzz tests
# are compiled. Shrinking a new input is capped at 100 runs: unbounded, it
# takes a minute for a large AdmissionReview and eats the whole FUZZTIME.
# Exits non-zero on the first failing target; the failing
# input is left under that package's testdata/fuzz/ for a regression seed.
set -euo pipefail

fuzztime="${1:-10s}"
cd "$(dirname "$0")/.."

mapfile -t dirs < <(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . \
	| grep -v -e '^./.cache/' -e '/vendor/' -e '^./test/tools/' \
	| xargs -r -n1 dirname | sort -u)

if [ "${#dirs[@]}" -eq 0 ]; then
	echo "fuzz: no fuzz targets found"
	exit 0
fi

ran=0
for dir in "${dirs[@]}"; do
	pkg="$(go list "$dir")"
	mapfile -t targets < <(go test -list '^Fuzz' "$pkg" | grep -E '^Fuzz')
	for target in "${targets[@]}"; do
		echo "fuzz: $pkg $target for $fuzztime"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 100x "$pkg"
		ran=$((ran + 1))
	done
done
echo "fuzz: $ran target(s) passed"
