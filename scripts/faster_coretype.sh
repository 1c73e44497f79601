#!/usr/bin/env bash
# Prints the OpenBLAS core type to use instead of the one OpenBLAS picks on this CPU, or
# nothing when its pick is fine. Debian 12's OpenBLAS 0.3.21 does not know some newer CPUs
# and runs its generic kernels there (README, Performance: about half the speed); this names
# the newest kernels the CPU can run, as `train`'s hint does (CPUFeatures.fasterBLASCore).
# `make reproduce` runs the numeric tests under them before it uses them.
#   scripts/faster_coretype.sh BINARY   (any program linked with OpenBLAS)
set -euo pipefail
core=$( (OPENBLAS_VERBOSE=2 "$1" --help 2>&1 || true) | sed -n "s/^Core: //p" | head -n 1)
case "$core" in
  Prescott | Core2 | Nehalem | Penryn | Dunnington | Atom) ;;
  *) exit 0 ;;
esac
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { [[ " $flags " == *" $1 "* ]]; }
if has avx512f && has avx512vl && has avx512bw; then
  echo SkylakeX
elif has avx2 && has fma; then
  echo Haswell
fi
