#!/usr/bin/env bash
# Prints an OpenBLAS core type other than the one OpenBLAS picks on this CPU, that this CPU
# can still run: the numeric tests run once more under it (`make test-coretype`), so that a
# result that holds only with this machine's BLAS kernels fails here, not on a user's CPU.
#   AVX-512 (OpenBLAS picks SkylakeX/Cooperlake/SapphireRapids) -> Haswell
#   AVX2 without AVX-512 (Haswell/Zen)                          -> Sandybridge
#   anything older                                              -> Nehalem
set -euo pipefail
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { [[ " $flags " == *" $1 "* ]]; }
if has avx512f; then
  echo Haswell
elif has avx2; then
  echo Sandybridge
else
  echo Nehalem
fi
