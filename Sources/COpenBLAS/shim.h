// OpenBLAS's CBLAS interface plus the thread-control calls it exports.
#ifndef LAYERCOLLAPSE_COPENBLAS_SHIM_H
#define LAYERCOLLAPSE_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
