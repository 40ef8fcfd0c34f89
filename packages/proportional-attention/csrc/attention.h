// Orchestration of one attention call over the thread pool: decode (split-K over key ranges, then a merge of the
// partial softmax states) and block prefill (query-row tiles, flash-style), plus the optional attention mass.
#pragma once
#include "kernel.h"
#include "thread_pool.h"

namespace pa {

// Runs the whole problem with up to `participants` threads of `pool` (pool may be null: caller thread only).
// Throws std::bad_alloc if the workspace cannot be allocated; writes nothing else on failure.
void runAttention(const Problem& problem, const KernelTable& table, ThreadPool* pool, int participants);

}  // namespace pa
