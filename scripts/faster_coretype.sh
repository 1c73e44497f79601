#!/usr/bin/env bash
# Prints the OpenBLAS core type to use instead of the one OpenBLAS picks on this CPU, or
# nothing when its pick is fine. Debian 12's OpenBLAS 0.3.21 does not know some newer CPUs
# and runs its generic kernels there (README, Performance: about half the speed). The
# binary decides (the `faster kernels:` line of `layercollapse --version`, the same rule as
# `train`'s hint); `make reproduce` runs the numeric tests under them before it uses them.
#   scripts/faster_coretype.sh LAYERCOLLAPSE_BINARY
set -euo pipefail
"$1" --version | sed -n 's/^faster kernels: \([A-Za-z0-9]*\).*/\1/p'
