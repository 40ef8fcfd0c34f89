// Standalone harness for the kernels without Node (for machines with a compiler but no Node, or to profile):
//   g++ -O3 -std=c++17 -fopenmp-simd -fno-math-errno -pthread -Icsrc csrc/attention.cc csrc/kernel_scalar.cc \
//       csrc/kernel_avx2.cc csrc/kernel_avx512.cc bench/native/bench.cc -o /tmp/pa-bench && \
//       /tmp/pa-bench [threads] [auto|avx512|avx2|scalar] [MiB] [decode]
// The kernel level caps the table like SEMANTICACHE_ATTENTION_SIMD: the best this CPU runs up to that level.
// MiB: decode working set cycled over (default 96; make it larger than the L3 cache).
// Prints the same decode table as `pnpm bench` (GB/s of keys+values against a read-bandwidth probe run with the
// same threads) and the causal prefill throughput. No numbers are computed here that `pnpm bench` does not also
// measure; this only removes Node from the loop.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "attention.h"

using namespace pa;
using Clock = std::chrono::steady_clock;

namespace {

uint32_t rngState = 12345;
float randomUnit() {
  rngState ^= rngState << 13;
  rngState ^= rngState >> 17;
  rngState ^= rngState << 5;
  return static_cast<float>(rngState) / 4294967296.0f * 2.0f - 1.0f;
}

uint16_t toHalf(float f) {
  // Round to nearest even, normal range only (inputs are in [-1, 1] and away from the subnormals here).
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int32_t exponent = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  if (exponent <= 0) return static_cast<uint16_t>(sign);
  uint32_t h = (static_cast<uint32_t>(exponent) << 10) | ((x & 0x7fffff) >> 13);
  const uint32_t rest = x & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

struct Layer {
  std::vector<float> keys32, values32;
  std::vector<uint16_t> keys16, values16;
  std::vector<float> logSizes;
  std::vector<HeadView> heads;
};

Layer makeLayer(int hkv, int64_t n, int d, DType dtype) {
  Layer layer;
  const int64_t count = hkv * n * d;
  if (dtype == DType::F32) {
    layer.keys32.resize(count);
    layer.values32.resize(count);
    for (int64_t i = 0; i < count; ++i) {
      layer.keys32[i] = randomUnit();
      layer.values32[i] = randomUnit();
    }
  } else {
    layer.keys16.resize(count);
    layer.values16.resize(count);
    for (int64_t i = 0; i < count; ++i) {
      layer.keys16[i] = toHalf(randomUnit());
      layer.values16[i] = toHalf(randomUnit());
    }
  }
  layer.logSizes.resize(hkv * n);
  for (int64_t j = 0; j < hkv * n; ++j) layer.logSizes[j] = std::log(1.0f + static_cast<float>(j % 4));
  for (int g = 0; g < hkv; ++g) {
    const int64_t offset = g * n * d;
    const void* k = dtype == DType::F32 ? static_cast<const void*>(layer.keys32.data() + offset)
                                        : static_cast<const void*>(layer.keys16.data() + offset);
    const void* v = dtype == DType::F32 ? static_cast<const void*>(layer.values32.data() + offset)
                                        : static_cast<const void*>(layer.values16.data() + offset);
    layer.heads.push_back({k, v, layer.logSizes.data() + g * n, n});
  }
  return layer;
}

double readBandwidth(const KernelTable& table, ThreadPool* pool, int threads, double bytes) {
  const int64_t floats = static_cast<int64_t>(bytes / 4);
  std::vector<float> data(floats, 1.0f);
  const int64_t pieces = threads * 8;
  const int64_t per = (floats + pieces - 1) / pieces;
  std::vector<double> partial(pieces);
  double best = 0.0;
  for (int rep = 0; rep < 8; ++rep) {
    auto t0 = Clock::now();
    pool->run(pieces, threads, [&](int64_t i, int) {
      const int64_t b = i * per, e = std::min(floats, b + per);
      partial[i] = b < e ? table.sumArray(data.data() + b, e - b) : 0.0;
    });
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, floats * 4.0 / s / 1e9);
  }
  return best;
}

double medianSeconds(const std::function<void()>& fn, double budget) {
  fn();
  std::vector<double> times;
  const auto start = Clock::now();
  while (times.size() < 2000 && std::chrono::duration<double>(Clock::now() - start).count() < budget) {
    auto t0 = Clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const double workingSet = (argc > 3 ? std::atof(argv[3]) : 96.0) * (1 << 20);
  const char* level = argc > 2 ? argv[2] : "auto";
  const bool avx2 = avx2Compiled() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c") && std::strcmp(level, "scalar") != 0;
  const bool avx512 = avx2 && avx512Compiled() && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                      std::strcmp(level, "avx2") != 0;
  const KernelTable& table = avx512 ? kAvx512Table : avx2 ? kAvx2Table : kScalarTable;
  ThreadPool pool(threads);
  ThreadPool single(1);
  const double probeBytes = std::max(workingSet, 256.0 * (1 << 20));
  const double bw = readBandwidth(table, &pool, threads, probeBytes);
  const double bw1 = readBandwidth(table, &single, 1, probeBytes);
  std::printf("kernels: %s, threads: %d\nread bandwidth (%.0f MiB): %.1f GB/s with %d threads, %.1f GB/s with 1\n",
              table.name, threads, probeBytes / (1 << 20), bw, threads, bw1);
  std::printf("| shape | dtype | n | us/call | GB/s | %% of read BW | 1-thread GB/s | %% of 1-thread BW |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
  struct Shape {
    const char* name;
    int h, hkv, d;
  };
  const Shape shapes[] = {
      {"demo 6q/6kv x64", 6, 6, 64}, {"llama3-8b 32q/8kv x128", 32, 8, 128}, {"qwen2.5-0.5b 14q/2kv x64", 14, 2, 64}};
  for (const Shape& shape : shapes) {
    for (DType dtype : {DType::F32, DType::F16}) {
      for (int64_t n : {1024, 4096, 16384, 65536}) {
        const double elem = dtype == DType::F32 ? 4.0 : 2.0;
        const double layerBytes = shape.hkv * n * shape.d * elem * 2.0;
        const int numLayers = std::min(512, std::max(1, static_cast<int>(std::ceil(workingSet / layerBytes))));
        std::vector<Layer> layers;
        for (int l = 0; l < numLayers; ++l) layers.push_back(makeLayer(shape.hkv, n, shape.d, dtype));
        std::vector<float> q(shape.h * shape.d), out(shape.h * shape.d);
        for (float& x : q) x = randomUnit();
        int next = 0;
        auto runWith = [&](ThreadPool* p, int t) {
          return [&, p, t] {
            Problem prob{q.data(), out.data(), layers[next].heads.data(), nullptr, shape.h, shape.hkv,
                         shape.h / shape.hkv, shape.d, 1, 1.0f / std::sqrt(static_cast<float>(shape.d)), dtype};
            runAttention(prob, table, p, t);
            next = (next + 1) % numLayers;
          };
        };
        const double s = medianSeconds(runWith(&pool, threads), 0.4);
        const double s1 = medianSeconds(runWith(&single, 1), 0.4);
        std::printf("| %s | %s | %lld | %.1f | %.1f | %.0f %% | %.1f | %.0f %% |\n", shape.name,
                    dtype == DType::F32 ? "fp32" : "fp16", static_cast<long long>(n), s * 1e6, layerBytes / s / 1e9,
                    100.0 * layerBytes / s / 1e9 / bw, layerBytes / s1 / 1e9, 100.0 * layerBytes / s1 / 1e9 / bw1);
      }
    }
  }
  if (argc > 4 && std::strcmp(argv[4], "decode") == 0) return 0;
  std::printf("\nprefill: causal over the whole sequence in blocks of 512 (fp32 cache)\n");
  std::printf("| shape | tokens | seconds | tokens/s | GFLOP/s |\n| --- | --- | --- | --- | --- |\n");
  for (const Shape& shape : shapes) {
    for (int64_t total : {4096, 16384}) {
      Layer layer = makeLayer(shape.hkv, total, shape.d, DType::F32);
      const int block = 512;
      std::vector<float> q(block * shape.h * shape.d), out(q.size());
      for (float& x : q) x = randomUnit();
      const auto t0 = Clock::now();
      for (int64_t end = block; end <= total; end += block) {
        std::vector<HeadView> view = layer.heads;
        for (HeadView& h : view) h.length = end;
        Problem prob{q.data(), out.data(), view.data(), nullptr, shape.h, shape.hkv, shape.h / shape.hkv, shape.d,
                     block, 1.0f / std::sqrt(static_cast<float>(shape.d)), DType::F32};
        runAttention(prob, table, &pool, threads);
      }
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      const double flops = 4.0 * shape.d * shape.h * (static_cast<double>(total) * (total + 1) / 2.0);
      std::printf("| %s | %lld | %.2f | %.0f | %.1f |\n", shape.name, static_cast<long long>(total), s, total / s,
                  flops / s / 1e9);
    }
  }
  return 0;
}
