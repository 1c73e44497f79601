#!/usr/bin/env bash
# Prints an OpenBLAS core type other than the one `make test` runs with here, that this CPU
# can still run: the numeric tests run once more under it (`make test-coretype`), so that a
# result that holds only with this machine's BLAS kernels fails here, not on a user's CPU.
# The kernels `make test` ran with are read from the binary (`layercollapse --version`:
# "kernels X"), which reports OpenBLAS's pick or an OPENBLAS_CORETYPE already set in the
# environment (a machine that sets OPENBLAS_CORETYPE=Haswell for every process would
# otherwise run the same kernels twice):
#   AVX-512, the kernels are SkylakeX/Cooperlake/SapphireRapids -> Haswell
#   AVX-512, the kernels are anything else                      -> SkylakeX
#   AVX2 without AVX-512, the kernels are Haswell/Zen           -> Sandybridge
#   AVX2 without AVX-512, the kernels are anything else         -> Haswell
#   anything older                                            -> Nehalem, or Core2 where those are the kernels
#   scripts/other_coretype.sh LAYERCOLLAPSE_BINARY
set -euo pipefail
version=$("$1" --version) || {
  echo "other_coretype.sh: '$1 --version' failed" >&2
  exit 1
}
pick=$(printf '%s\n' "$version" | sed -n '/, kernels [A-Za-z0-9]*$/{s/.*, kernels \([A-Za-z0-9]*\)$/\1/p;q;}')
if [ -z "$pick" ]; then
  echo "other_coretype.sh: '$1 --version' named no OpenBLAS kernels" >&2
  exit 1
fi
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { [[ " $flags " == *" $1 "* ]]; }
if has avx512f && has avx512vl && has avx512bw && has avx512dq; then
  case "$pick" in SkylakeX | Cooperlake | SapphireRapids) echo Haswell ;; *) echo SkylakeX ;; esac
elif has avx2 && has fma; then
  case "$pick" in Haswell | Zen) echo Sandybridge ;; *) echo Haswell ;; esac
else
  case "$pick" in Nehalem) echo Core2 ;; *) echo Nehalem ;; esac
fi
