#include "attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace pa {
namespace {

constexpr int64_t kMinDecodeChunk = 512;     // keys per split-K chunk: below this the merge outweighs the gain
constexpr int kPrefillVectors = 32;          // query vectors per prefill task: each key tile is reused this often
constexpr int64_t kMassChunk = 1024;         // keys per attention-mass task
constexpr double kSerialWorkBytes = 96e3;    // smaller jobs run on the caller: waking a worker costs more
constexpr int64_t kCacheLineFloats = 16;

int64_t roundToCacheLine(int64_t floats) { return (floats + kCacheLineFloats - 1) / kCacheLineFloats * kCacheLineFloats; }

// Per-participant scratch: fp16 conversion tiles, the score tile, and (prefill) one query set's running state.
// Every float is written before it is read, so nothing is zeroed; blocks are padded to whole cache lines so two
// participants never write one line.
struct Workspace {
  int64_t floatsPerParticipant = 0;
  std::unique_ptr<float[]> storage;
  float* floats = nullptr;  // storage aligned to a cache line
  Scratch scratchFor(int participant, int d) {
    float* base = floats + participant * floatsPerParticipant;
    return Scratch{base, base + kTile * d, base + 2 * kTile * d};
  }
  float* stateFor(int participant, int d) {
    return floats + participant * floatsPerParticipant + 2 * kTile * d + kMaxQuerySet * kTile;
  }
  void allocate(int participants, int d, bool withState) {
    floatsPerParticipant = roundToCacheLine(2 * kTile * d + kMaxQuerySet * kTile + (withState ? kMaxQuerySet * (d + 2) : 0));
    storage.reset(new float[static_cast<size_t>(participants * floatsPerParticipant + kCacheLineFloats)]);
    const uintptr_t address = reinterpret_cast<uintptr_t>(storage.get());
    floats = reinterpret_cast<float*>((address + 63) & ~static_cast<uintptr_t>(63));
  }
};

int effectiveParticipants(const Problem& p, ThreadPool* pool, int participants) {
  if (pool == nullptr) return 1;
  int64_t keys = 0;
  for (int g = 0; g < p.numKvHeads; ++g) keys += p.heads[g].length;
  const double elemBytes = p.dtype == DType::F32 ? 4.0 : 2.0;
  const double work = static_cast<double>(keys) * p.headDim * elemBytes * 2.0 * p.blockLength;
  if (work < kSerialWorkBytes) return 1;
  return std::min(participants, pool->size());
}

void runTasks(ThreadPool* pool, int participants, int64_t count, const ThreadPool::Task& task) {
  if (pool == nullptr || participants <= 1) {
    for (int64_t i = 0; i < count; ++i) task(i, 0);
  } else {
    pool->run(count, participants, task);
  }
}

// ---- decode ---------------------------------------------------------------------------------------------------

struct DecodeTask {
  int kvHead;
  int firstQuery;  // offset inside the group
  int queryCount;
  int64_t keyBegin;
  int64_t keyEnd;
  int64_t stateOffset;  // into partial states: max[queryCount], sum[queryCount], acc[queryCount × d]
};

void runDecode(const Problem& p, const KernelTable& table, ThreadPool* pool, int participants) {
  const int G = p.groupSize;
  const int d = p.headDim;
  int64_t totalKeys = 0;
  int64_t longest = 0;
  for (int g = 0; g < p.numKvHeads; ++g) {
    totalKeys += p.heads[g].length;
    longest = std::max(longest, p.heads[g].length);
  }
  // Split-K: enough chunks for every participant to have a few, never smaller than kMinDecodeChunk keys.
  int64_t chunk = std::max<int64_t>(longest, 1);
  if (participants > 1) {
    const int64_t target = (totalKeys + participants * 4 - 1) / (participants * 4);
    chunk = std::max(kMinDecodeChunk, (target + kTile - 1) / kTile * kTile);
  }
  std::vector<DecodeTask> tasks;
  std::vector<int64_t> headFirstTask(p.numKvHeads + 1);
  int64_t stateFloats = 0;
  for (int g = 0; g < p.numKvHeads; ++g) {
    headFirstTask[g] = static_cast<int64_t>(tasks.size());
    const int64_t n = p.heads[g].length;
    for (int64_t kb = 0; kb == 0 || kb < n; kb += chunk) {
      for (int first = 0; first < G; first += kMaxQuerySet) {
        const int count = std::min(kMaxQuerySet, G - first);
        tasks.push_back({g, first, count, kb, std::min(n, kb + chunk), stateFloats});
        stateFloats += roundToCacheLine(static_cast<int64_t>(count) * (d + 2));  // one writer per line
      }
    }
  }
  headFirstTask[p.numKvHeads] = static_cast<int64_t>(tasks.size());

  std::vector<float> states(static_cast<size_t>(stateFloats));
  // Raw logits per head (G × n_g), kept only when the attention mass is wanted: re-reading them is far cheaper
  // than re-reading the keys.
  std::vector<int64_t> logitOffset(p.numKvHeads + 1, 0);
  for (int g = 0; g < p.numKvHeads; ++g)
    logitOffset[g + 1] = logitOffset[g] + (p.mass != nullptr ? static_cast<int64_t>(G) * p.heads[g].length : 0);
  // Every logit is written before it is read: no need to zero this (possibly large) buffer.
  std::unique_ptr<float[]> logits(p.mass != nullptr ? new float[static_cast<size_t>(logitOffset[p.numKvHeads])] : nullptr);
  Workspace ws;
  ws.allocate(participants, d, false);

  runTasks(pool, participants, static_cast<int64_t>(tasks.size()), [&](int64_t t, int participant) {
    const DecodeTask& task = tasks[t];
    float* runMax = states.data() + task.stateOffset;
    float* runSum = runMax + task.queryCount;
    float* acc = runSum + task.queryCount;
    const float* queries[kMaxQuerySet];
    int64_t limits[kMaxQuerySet];
    const int firstHead = task.kvHead * G + task.firstQuery;
    for (int r = 0; r < task.queryCount; ++r) {
      queries[r] = p.q + static_cast<int64_t>(firstHead + r) * d;
      limits[r] = task.keyEnd;
      runMax[r] = -INFINITY;
      runSum[r] = 0.0f;
    }
    std::memset(acc, 0, sizeof(float) * task.queryCount * d);
    float* headLogits = p.mass != nullptr ? logits.get() + logitOffset[task.kvHead] : nullptr;
    QuerySet qs{queries,
                limits,
                task.queryCount,
                runMax,
                runSum,
                acc,
                headLogits != nullptr ? headLogits + static_cast<int64_t>(task.firstQuery) * p.heads[task.kvHead].length
                                      : nullptr,
                p.heads[task.kvHead].length};
    table.processQuerySet(p, task.kvHead, task.keyBegin, task.keyEnd, qs, ws.scratchFor(participant, d));
  });

  // Merge the chunks of every query head: M = max m_c, L = Σ l_c e^{m_c − M}, o = Σ acc_c e^{m_c − M} / L.
  // A chunk's max is NaN once it met a NaN logit, and M keeps it (std::max would drop it): the row is NaN. All
  // chunks at −∞ (fully masked): zeros. A fully masked chunk of a live row still adds acc_c · 0, which is NaN when its
  // value rows hold a NaN, as a weight-0 entry inside a chunk does.
  std::vector<float> finalMax(p.numHeads), finalSum(p.numHeads);
  for (int g = 0; g < p.numKvHeads; ++g) {
    for (int i = 0; i < G; ++i) {
      const int head = g * G + i;
      float* o = p.out + static_cast<int64_t>(head) * d;
      float M = -INFINITY;
      for (int64_t t = headFirstTask[g]; t < headFirstTask[g + 1]; ++t) {
        const DecodeTask& task = tasks[t];
        if (i < task.firstQuery || i >= task.firstQuery + task.queryCount) continue;
        const float m = states[task.stateOffset + (i - task.firstQuery)];
        if (m > M || std::isnan(m)) M = m;
      }
      std::fill(o, o + d, 0.0f);
      float L = 0.0f;
      if (M != -INFINITY) {
        for (int64_t t = headFirstTask[g]; t < headFirstTask[g + 1]; ++t) {
          const DecodeTask& task = tasks[t];
          if (i < task.firstQuery || i >= task.firstQuery + task.queryCount) continue;
          const int r = i - task.firstQuery;
          const float* base = states.data() + task.stateOffset;
          const float w = std::exp(base[r] - M);  // 0 for a fully masked chunk (m = −∞); NaN when M is NaN
          L += base[task.queryCount + r] * w;
          const float* acc = base + 2 * task.queryCount + static_cast<int64_t>(r) * d;
          for (int k = 0; k < d; ++k) o[k] += acc[k] * w;
        }
        const float inv = 1.0f / L;
        for (int k = 0; k < d; ++k) o[k] *= inv;
      }
      finalMax[head] = M;
      finalSum[head] = L;
    }
  }

  if (p.mass == nullptr) return;
  std::vector<DecodeTask> massTasks;
  for (int g = 0; g < p.numKvHeads; ++g)
    for (int64_t kb = 0; kb < p.heads[g].length; kb += kMassChunk)
      massTasks.push_back({g, 0, G, kb, std::min(p.heads[g].length, kb + kMassChunk), 0});
  runTasks(pool, participants, static_cast<int64_t>(massTasks.size()), [&](int64_t t, int) {
    const DecodeTask& task = massTasks[t];
    const int firstHead = task.kvHead * G;
    table.massFromLogits(logits.get() + logitOffset[task.kvHead], p.heads[task.kvHead].length, G,
                         finalMax.data() + firstHead, finalSum.data() + firstHead, task.keyBegin, task.keyEnd,
                         p.mass[task.kvHead]);
  });
}

// ---- prefill --------------------------------------------------------------------------------------------------

struct PrefillTask {
  int kvHead;
  int rowBegin, rowEnd;    // block rows (query tokens)
  int headBegin, headEnd;  // query heads inside the group
};

// Query vectors of a task, row-major over (row, head), with their causal key limits.
int gatherQueries(const Problem& p, const PrefillTask& task, const float** queries, int64_t* limits, int64_t* index) {
  const int64_t n = p.heads[task.kvHead].length;
  int count = 0;
  for (int t = task.rowBegin; t < task.rowEnd; ++t) {
    for (int i = task.headBegin; i < task.headEnd; ++i) {
      const int64_t vector = static_cast<int64_t>(t) * p.numHeads + task.kvHead * p.groupSize + i;
      queries[count] = p.q + vector * p.headDim;
      limits[count] = n - p.blockLength + t + 1;
      index[count] = vector;
      ++count;
    }
  }
  return count;
}

std::vector<PrefillTask> prefillTasks(const Problem& p, int vectorsPerTask) {
  const int G = p.groupSize;
  const int headsPerTask = std::min(G, vectorsPerTask);
  const int rowsPerTask = std::max(1, vectorsPerTask / headsPerTask);
  std::vector<PrefillTask> tasks;
  // Later rows see more keys: schedule them first so the dynamic queue ends on short tasks.
  for (int rowEnd = p.blockLength; rowEnd > 0; rowEnd -= rowsPerTask) {
    const int rowBegin = std::max(0, rowEnd - rowsPerTask);
    for (int g = 0; g < p.numKvHeads; ++g)
      for (int h = 0; h < G; h += headsPerTask) tasks.push_back({g, rowBegin, rowEnd, h, std::min(G, h + headsPerTask)});
  }
  return tasks;
}

void runPrefill(const Problem& p, const KernelTable& table, ThreadPool* pool, int participants) {
  const int d = p.headDim;
  const int64_t vectors = static_cast<int64_t>(p.blockLength) * p.numHeads;
  std::vector<float> finalMax(p.mass != nullptr ? vectors : 0), finalSum(p.mass != nullptr ? vectors : 0);
  const std::vector<PrefillTask> tasks = prefillTasks(p, kPrefillVectors);
  Workspace ws;
  ws.allocate(participants, d, true);

  runTasks(pool, participants, static_cast<int64_t>(tasks.size()), [&](int64_t t, int participant) {
    const PrefillTask& task = tasks[t];
    const float* queries[kMaxQuerySet];
    int64_t limits[kMaxQuerySet];
    int64_t index[kMaxQuerySet];
    const int count = gatherQueries(p, task, queries, limits, index);
    float* runMax = ws.stateFor(participant, d);
    float* runSum = runMax + kMaxQuerySet;
    float* acc = runSum + kMaxQuerySet;
    for (int r = 0; r < count; ++r) {
      runMax[r] = -INFINITY;
      runSum[r] = 0.0f;
    }
    std::memset(acc, 0, sizeof(float) * count * d);
    int64_t keyEnd = 0;
    for (int r = 0; r < count; ++r) keyEnd = std::max(keyEnd, limits[r]);
    QuerySet qs{queries, limits, count, runMax, runSum, acc, nullptr, 0};
    table.processQuerySet(p, task.kvHead, 0, keyEnd, qs, ws.scratchFor(participant, d));
    for (int r = 0; r < count; ++r) {
      float* o = p.out + index[r] * d;
      const float* a = acc + static_cast<int64_t>(r) * d;
      if (runMax[r] == -INFINITY) {
        std::fill(o, o + d, 0.0f);  // fully masked (every logit −∞): zeros, whatever 0 × value the accumulator holds
      } else {
        const float inv = 1.0f / runSum[r];  // NaN for a NaN row
        for (int k = 0; k < d; ++k) o[k] = a[k] * inv;
      }
      if (p.mass != nullptr) {
        finalMax[index[r]] = runMax[r];
        finalSum[index[r]] = runSum[r];
      }
    }
  });

  if (p.mass == nullptr) return;
  // Second pass over the keys with the final normalisers; tasks own disjoint key ranges, so no two write one key.
  struct MassTask {
    int kvHead;
    int64_t keyBegin, keyEnd;
  };
  std::vector<MassTask> massTasks;
  for (int g = 0; g < p.numKvHeads; ++g)
    for (int64_t kb = 0; kb < p.heads[g].length; kb += kMassChunk)
      massTasks.push_back({g, kb, std::min(p.heads[g].length, kb + kMassChunk)});
  const std::vector<PrefillTask> querySets = prefillTasks(p, kMaxQuerySet);
  runTasks(pool, participants, static_cast<int64_t>(massTasks.size()), [&](int64_t t, int participant) {
    const MassTask& task = massTasks[t];
    float* mass = p.mass[task.kvHead];
    std::fill(mass + task.keyBegin, mass + task.keyEnd, 0.0f);
    const float* queries[kMaxQuerySet];
    int64_t limits[kMaxQuerySet];
    int64_t index[kMaxQuerySet];
    float maxes[kMaxQuerySet];
    float sums[kMaxQuerySet];
    for (const PrefillTask& set : querySets) {
      if (set.kvHead != task.kvHead) continue;
      const int count = gatherQueries(p, set, queries, limits, index);
      for (int r = 0; r < count; ++r) {
        maxes[r] = finalMax[index[r]];
        sums[r] = finalSum[index[r]];
      }
      table.accumulateMass(p, task.kvHead, task.keyBegin, task.keyEnd, queries, limits, maxes, sums, count, mass,
                           ws.scratchFor(participant, d));
    }
  });
}

}  // namespace

void runAttention(const Problem& problem, const KernelTable& table, ThreadPool* pool, int participants) {
  const int used = effectiveParticipants(problem, pool, participants);
  if (problem.blockLength == 1) {
    runDecode(problem, table, pool, used);
  } else {
    runPrefill(problem, table, pool, used);
  }
}

}  // namespace pa
