// Portable build of the hot loops: correct on every CPU, used when AVX2/FMA/F16C is absent or forced off.
#include <math.h>
#include <string.h>

#include "kernel.h"

namespace pa {
namespace scalar_impl {
#include "kernel_impl.h"
}  // namespace scalar_impl

const KernelTable kScalarTable = {"scalar", scalar_impl::processQuerySetImpl, scalar_impl::accumulateMassImpl,
                                  scalar_impl::massFromLogitsImpl, scalar_impl::sumArrayImpl};
}  // namespace pa
