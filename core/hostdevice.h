// Marks functions usable from host and CUDA device code alike.
#pragma once
#if defined(__CUDACC__)
#define ZEROTH_HD __host__ __device__ __forceinline__
#else
#define ZEROTH_HD inline
#endif
