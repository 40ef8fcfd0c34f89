// AVX-512 build of the hot loops (F, BW, VL: 16-lane FMAs, fp16 converted in the loads, masked tails), selected at
// run time by __builtin_cpu_supports when the CPU and OS have it. All headers come first; the target pragma then
// applies only to this file's own functions.
#include <math.h>
#include <string.h>

#include "kernel.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_ps(), which -Wuninitialized flags (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace pa {
namespace avx512_impl {
#define PA_AVX512 1
#include "kernel_impl.h"
#undef PA_AVX512
}  // namespace avx512_impl
}  // namespace pa

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

namespace pa {
const KernelTable kAvx512Table = {"avx512", avx512_impl::processQuerySetImpl, avx512_impl::accumulateMassImpl,
                                  avx512_impl::massFromLogitsImpl, avx512_impl::sumArrayImpl};
bool avx512Compiled() { return true; }
}  // namespace pa

#else

namespace pa {
const KernelTable kAvx512Table = {"scalar", nullptr, nullptr, nullptr, nullptr};  // never selected
bool avx512Compiled() { return false; }
}  // namespace pa

#endif
