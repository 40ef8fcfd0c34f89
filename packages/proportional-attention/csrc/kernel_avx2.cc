// x86-64-v3 build of the hot loops (AVX2, FMA, F16C), selected at run time by __builtin_cpu_supports.
// All headers come first; the target pragma then applies only to this file's own functions.
#include <math.h>
#include <string.h>

#include "kernel.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace pa {
namespace avx2_impl {
#define PA_AVX2 1
#include "kernel_impl.h"
#undef PA_AVX2
}  // namespace avx2_impl
}  // namespace pa

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace pa {
const KernelTable kAvx2Table = {"avx2", avx2_impl::processQuerySetImpl, avx2_impl::accumulateMassImpl,
                                avx2_impl::massFromLogitsImpl, avx2_impl::sumArrayImpl};
bool avx2Compiled() { return true; }
}  // namespace pa

#else

namespace pa {
const KernelTable kAvx2Table = {"scalar", nullptr, nullptr, nullptr, nullptr};  // never selected
bool avx2Compiled() { return false; }
}  // namespace pa

#endif
