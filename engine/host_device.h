// Functions shared by CPU references and CUDA kernels (index math, RNG) are marked so.
#pragma once

#if defined(__CUDACC__)
#define FFR_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define FFR_HOST_DEVICE inline
#endif
