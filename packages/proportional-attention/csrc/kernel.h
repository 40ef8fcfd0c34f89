// Shared declarations of the attention kernels. The hot loops live in kernel_impl.h, compiled three times (scalar,
// AVX2/FMA/F16C, AVX-512); the addon picks one table at run time.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pa {

enum class DType { F32, F16 };

struct HeadView {
  const void* keys;      // n × d, fp32 or fp16 bits
  const void* values;    // n × d
  const float* logSizes; // n
  int64_t length;        // n_g
};

// One layer's attention problem: m query tokens × H heads of dim d over Hkv ragged heads.
struct Problem {
  const float* q;  // m × H × d
  float* out;      // m × H × d
  const HeadView* heads;
  float* const* mass;  // Hkv pointers or nullptr
  int numHeads;        // H
  int numKvHeads;      // Hkv
  int groupSize;       // H / Hkv
  int headDim;         // d
  int blockLength;     // m
  float scale;
  DType dtype;
};

// A set of R query vectors of one KV head processed against keys [keyBegin, keyEnd). Query r may only see keys
// below keyLimit[r]. Running softmax state: max, sum and the un-normalised output accumulator (R × d).
struct QuerySet {
  const float* const* queries;  // R pointers to d floats
  const int64_t* keyLimit;      // R exclusive limits
  int count;                    // R
  float* runMax;                // R
  float* runSum;                // R
  float* acc;                   // R × d
  float* logits;                // optional: raw logits written at logits[r * logitStride + j]
  int64_t logitStride;
};

// Per-thread scratch for one call of processQuerySet.
struct Scratch {
  float* keyTile;    // tile × d (fp16 conversion)
  float* valueTile;  // tile × d
  float* scores;     // kMaxQuerySet × kTile
};

constexpr int kTile = 32;          // keys per tile: a tile of keys and values stays in L1 (measured 16–128)
constexpr int kMaxQuerySet = 64;   // query vectors per QuerySet (bounds the score scratch)

struct KernelTable {
  const char* name;
  void (*processQuerySet)(const Problem& p, int kvHead, int64_t keyBegin, int64_t keyEnd, const QuerySet& qs,
                          const Scratch& s);
  // mass[j] += sum_r exp(q_r·k_j·scale + b_j − finalMax_r) / finalSum_r over keys [keyBegin, keyEnd) visible to r.
  void (*accumulateMass)(const Problem& p, int kvHead, int64_t keyBegin, int64_t keyEnd, const float* const* queries,
                         const int64_t* keyLimit, const float* finalMax, const float* finalSum, int count,
                         float* mass, const Scratch& s);
  // mass[j] = sum_r exp(logits[r * stride + j] − finalMax_r) / finalSum_r for j in [keyBegin, keyEnd).
  void (*massFromLogits)(const float* logits, int64_t stride, int count, const float* finalMax,
                         const float* finalSum, int64_t keyBegin, int64_t keyEnd, float* mass);
  // Sum of n floats read from memory: the bandwidth probe.
  double (*sumArray)(const float* x, int64_t n);
};

extern const KernelTable kScalarTable;
extern const KernelTable kAvx2Table;
extern const KernelTable kAvx512Table;
bool avx2Compiled();
bool avx512Compiled();

}  // namespace pa
