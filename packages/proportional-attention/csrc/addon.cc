// N-API surface: argument checks (every pointer the kernels touch is bounds-checked here, so no JS input can make
// them read or write out of range), SIMD dispatch, the thread pool, sync and async entry points, bandwidth probe.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "attention.h"
#include "kernel.h"
#include "thread_pool.h"

namespace {

using pa::DType;
using pa::HeadView;
using pa::KernelTable;
using pa::Problem;
using pa::ThreadPool;

constexpr int kMaxThreads = 256;

bool cpuHasAvx2() {
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
  if (!pa::avx2Compiled()) return false;
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

// __builtin_cpu_supports also checks that the OS saves the 512-bit state.
bool cpuHasAvx512() {
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
  if (!pa::avx512Compiled() || !cpuHasAvx2()) return false;
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

// Process-wide state shared by every Node environment (worker threads included).
struct Globals {
  std::mutex mutex;  // held by the call using the pool; guards its replacement
  std::unique_ptr<ThreadPool> pool;
  std::atomic<int> threads{1};
  std::atomic<const KernelTable*> table{&pa::kScalarTable};
  bool hasAvx2 = false;
  bool hasAvx512 = false;
  // The best table this CPU runs, capped by a level name: 'avx512' (or 'auto'), 'avx2', 'scalar'.
  const KernelTable* bestUpTo(const std::string& level) const {
    if (level == "scalar") return &pa::kScalarTable;
    if (hasAvx512 && level != "avx2") return &pa::kAvx512Table;
    return hasAvx2 ? &pa::kAvx2Table : &pa::kScalarTable;
  }
};

Globals& globals() {
  // Intentionally leaked: worker threads must not be joined from static destructors at process exit.
  static Globals* g = [] {
    auto* state = new Globals();
    state->hasAvx2 = cpuHasAvx2();
    state->hasAvx512 = cpuHasAvx512();
    const char* simd = std::getenv("SEMANTICACHE_ATTENTION_SIMD");
    state->table.store(state->bestUpTo(simd != nullptr ? simd : "auto"));
    int threads = std::min<int>(2, std::max<unsigned>(1, std::thread::hardware_concurrency()));
    if (const char* env = std::getenv("SEMANTICACHE_ATTENTION_THREADS")) {
      const int requested = std::atoi(env);
      if (requested >= 1 && requested <= kMaxThreads) threads = requested;
    }
    state->threads.store(threads);
    return state;
  }();
  return *g;
}

// The pool for the current thread count, (re)created on demand. Caller holds globals().mutex.
ThreadPool* poolLocked(Globals& g) {
  const int threads = g.threads.load();
  if (!g.pool || g.pool->size() != threads) {
    g.pool.reset();
    g.pool = std::make_unique<ThreadPool>(threads);
  }
  return g.pool.get();
}

// ---- argument checks ------------------------------------------------------------------------------------------

struct ArgError {
  bool range;  // RangeError, else TypeError
  std::string message;
};

[[noreturn]] void fail(bool range, const std::string& message) { throw ArgError{range, message}; }

int64_t integerArg(const Napi::Value& v, const char* name, int64_t min, int64_t max) {
  if (!v.IsNumber()) fail(false, std::string(name) + " must be a number");
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(x) || std::floor(x) != x) fail(true, std::string(name) + " must be an integer, got " + std::to_string(x));
  if (x < static_cast<double>(min) || x > static_cast<double>(max))
    fail(true, std::string(name) + " must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " +
                   std::to_string(static_cast<int64_t>(x)));
  return static_cast<int64_t>(x);
}

struct ByteRange {
  const uint8_t* begin;
  const uint8_t* end;
  std::string name;
};

Napi::TypedArray typedArrayArg(const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray()) fail(false, name + " must be a typed array");
  return v.As<Napi::TypedArray>();
}

// Data pointer of a typed array (already offset); null for a detached buffer, whose length then reads 0.
void* dataOf(const Napi::TypedArray& a) {
  void* data = nullptr;
  napi_status status = napi_get_typedarray_info(a.Env(), a, nullptr, nullptr, &data, nullptr, nullptr);
  if (status != napi_ok) fail(false, "could not read a typed array");
  return data;
}

// Everything a call needs, with the JS objects it reads kept for the async form.
struct Call {
  Problem problem{};
  std::vector<HeadView> heads;
  std::vector<float*> massPointers;
  std::vector<Napi::Object> keepAlive;
  Napi::Float32Array out;
};

// Outputs must not share memory with any input or with each other: the kernels read inputs after writing outputs.
void checkDisjoint(const std::vector<ByteRange>& written, const std::vector<ByteRange>& read) {
  for (size_t a = 0; a < written.size(); ++a) {
    const ByteRange& w = written[a];
    if (w.begin == w.end) continue;
    auto overlaps = [&](const ByteRange& r) { return r.begin != r.end && w.begin < r.end && r.begin < w.end; };
    for (const ByteRange& r : read)
      if (overlaps(r)) fail(true, w.name + " must not overlap " + r.name);
    for (size_t b = a + 1; b < written.size(); ++b)
      if (overlaps(written[b])) fail(true, w.name + " must not overlap " + written[b].name);
  }
}

// attention(q, heads, numHeads, headDim, blockLength, scale, out, attentionMass?)
Call parseCall(const Napi::CallbackInfo& info) {
  Call call;
  Problem& p = call.problem;
  if (info.Length() < 7) fail(false, "attention expects (q, heads, numHeads, headDim, blockLength, scale, out, attentionMass?)");
  const int64_t numHeads = integerArg(info[2], "numHeads", 1, 1 << 16);
  const int64_t headDim = integerArg(info[3], "headDim", 1, 1 << 16);
  const int64_t blockLength = integerArg(info[4], "blockLength", 1, (int64_t{1} << 31) - 1);
  if (!info[5].IsNumber()) fail(false, "scale must be a number");
  const double scale = info[5].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(scale) || !std::isfinite(static_cast<float>(scale))) fail(true, "scale must be a finite float32");
  if (!info[1].IsArray()) fail(false, "heads must be an array of head caches");
  Napi::Array headsArray = info[1].As<Napi::Array>();
  const int64_t numKvHeads = headsArray.Length();
  if (numKvHeads < 1 || numKvHeads > numHeads || numHeads % numKvHeads != 0)
    fail(true, "heads.length (" + std::to_string(numKvHeads) + ") must divide numHeads (" + std::to_string(numHeads) + ")");
  const int64_t vectorFloats = blockLength * numHeads * headDim;
  if (vectorFloats > (int64_t{1} << 40)) fail(true, "blockLength × numHeads × headDim is too large");

  Napi::TypedArray q = typedArrayArg(info[0], "q");
  if (q.TypedArrayType() != napi_float32_array) fail(false, "q must be a Float32Array");
  if (static_cast<int64_t>(q.ElementLength()) != vectorFloats)
    fail(true, "q.length must be blockLength × numHeads × headDim = " + std::to_string(vectorFloats) + ", got " +
                   std::to_string(q.ElementLength()));
  Napi::TypedArray out = typedArrayArg(info[6], "out");
  if (out.TypedArrayType() != napi_float32_array) fail(false, "out must be a Float32Array");
  if (static_cast<int64_t>(out.ElementLength()) != vectorFloats)
    fail(true, "out.length must be " + std::to_string(vectorFloats) + ", got " + std::to_string(out.ElementLength()));
  call.keepAlive.push_back(q);
  call.keepAlive.push_back(out);
  call.out = out.As<Napi::Float32Array>();

  std::vector<ByteRange> written, read;
  auto rangeOf = [](const Napi::TypedArray& a, void* data, int64_t elements, const std::string& name) {
    const uint8_t* b = static_cast<const uint8_t*>(data);
    return ByteRange{b, b == nullptr ? b : b + elements * static_cast<int64_t>(a.ElementSize()), name};
  };
  void* qData = dataOf(q);
  void* outData = dataOf(out);
  read.push_back(rangeOf(q, qData, vectorFloats, "q"));
  written.push_back(rangeOf(out, outData, vectorFloats, "out"));

  napi_typedarray_type cacheType = napi_float32_array;
  call.heads.resize(numKvHeads);
  for (int64_t g = 0; g < numKvHeads; ++g) {
    const std::string prefix = "heads[" + std::to_string(g) + "]";
    Napi::Value hv = headsArray.Get(static_cast<uint32_t>(g));
    if (!hv.IsObject()) fail(false, prefix + " must be an object { keys, values, logSizes, length }");
    Napi::Object h = hv.As<Napi::Object>();
    const int64_t length = integerArg(h.Get("length"), (prefix + ".length").c_str(), 0, int64_t{1} << 40);
    Napi::TypedArray keys = typedArrayArg(h.Get("keys"), prefix + ".keys");
    Napi::TypedArray values = typedArrayArg(h.Get("values"), prefix + ".values");
    Napi::TypedArray logSizes = typedArrayArg(h.Get("logSizes"), prefix + ".logSizes");
    const napi_typedarray_type kt = keys.TypedArrayType();
    if (kt != napi_float32_array && kt != napi_uint16_array)
      fail(false, prefix + ".keys must be a Float32Array or a Uint16Array of fp16 bits");
    if (g == 0) cacheType = kt;
    if (kt != cacheType) fail(false, prefix + ".keys has a different dtype from heads[0].keys");
    if (values.TypedArrayType() != kt) fail(false, prefix + ".values must have the same dtype as its keys");
    if (logSizes.TypedArrayType() != napi_float32_array) fail(false, prefix + ".logSizes must be a Float32Array");
    const int64_t need = length * headDim;
    if (static_cast<int64_t>(keys.ElementLength()) < need)
      fail(true, prefix + ".keys holds " + std::to_string(keys.ElementLength()) + " elements, length × headDim = " +
                     std::to_string(need));
    if (static_cast<int64_t>(values.ElementLength()) < need)
      fail(true, prefix + ".values holds " + std::to_string(values.ElementLength()) + " elements, length × headDim = " +
                     std::to_string(need));
    if (static_cast<int64_t>(logSizes.ElementLength()) < length)
      fail(true, prefix + ".logSizes holds " + std::to_string(logSizes.ElementLength()) + " elements, length = " +
                     std::to_string(length));
    if (length < blockLength)
      fail(true, prefix + ".length (" + std::to_string(length) + ") must be at least blockLength (" +
                     std::to_string(blockLength) + ")");
    void* kd = dataOf(keys);
    void* vd = dataOf(values);
    void* ld = dataOf(logSizes);
    call.heads[g] = HeadView{kd, vd, static_cast<const float*>(ld), length};
    read.push_back(rangeOf(keys, kd, need, prefix + ".keys"));
    read.push_back(rangeOf(values, vd, need, prefix + ".values"));
    read.push_back(rangeOf(logSizes, ld, length, prefix + ".logSizes"));
    call.keepAlive.push_back(keys);
    call.keepAlive.push_back(values);
    call.keepAlive.push_back(logSizes);
  }

  if (info.Length() > 7 && !info[7].IsUndefined() && !info[7].IsNull()) {
    if (!info[7].IsArray()) fail(false, "attentionMass must be an array of Float32Array, one per KV head");
    Napi::Array massArray = info[7].As<Napi::Array>();
    if (static_cast<int64_t>(massArray.Length()) != numKvHeads)
      fail(true, "attentionMass.length must equal heads.length (" + std::to_string(numKvHeads) + ")");
    call.massPointers.resize(numKvHeads);
    for (int64_t g = 0; g < numKvHeads; ++g) {
      const std::string name = "attentionMass[" + std::to_string(g) + "]";
      Napi::TypedArray m = typedArrayArg(massArray.Get(static_cast<uint32_t>(g)), name);
      if (m.TypedArrayType() != napi_float32_array) fail(false, name + " must be a Float32Array");
      if (static_cast<int64_t>(m.ElementLength()) < call.heads[g].length)
        fail(true, name + ".length must be at least heads[" + std::to_string(g) + "].length");
      void* md = dataOf(m);
      call.massPointers[g] = static_cast<float*>(md);
      written.push_back(rangeOf(m, md, call.heads[g].length, name));
      call.keepAlive.push_back(m);
    }
  }
  checkDisjoint(written, read);

  p.q = static_cast<const float*>(qData);
  p.out = static_cast<float*>(outData);
  p.heads = call.heads.data();
  p.mass = call.massPointers.empty() ? nullptr : call.massPointers.data();
  p.numHeads = static_cast<int>(numHeads);
  p.numKvHeads = static_cast<int>(numKvHeads);
  p.groupSize = static_cast<int>(numHeads / numKvHeads);
  p.headDim = static_cast<int>(headDim);
  p.blockLength = static_cast<int>(blockLength);
  p.scale = static_cast<float>(scale);
  p.dtype = cacheType == napi_uint16_array ? DType::F16 : DType::F32;
  return call;
}

[[noreturn]] void throwJs(Napi::Env env, const ArgError& e) {
  if (e.range) throw Napi::RangeError::New(env, e.message);
  throw Napi::TypeError::New(env, e.message);
}

// Runs the call on the pool. blocking=false (the JS thread): if another call holds the pool, run on this thread
// alone instead of waiting for it.
void execute(const Problem& problem, bool blocking) {
  Globals& g = globals();
  const KernelTable& table = *g.table.load();
  std::unique_lock<std::mutex> lock(g.mutex, std::defer_lock);
  if (blocking) {
    lock.lock();
  } else if (!lock.try_lock()) {
    pa::runAttention(problem, table, nullptr, 1);
    return;
  }
  ThreadPool* pool = poolLocked(g);
  pa::runAttention(problem, table, pool, pool->size());
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    Call call = parseCall(info);
    execute(call.problem, false);
    return env.Undefined();
  } catch (const ArgError& e) {
    throwJs(env, e);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "attention: out of memory for the workspace");
  }
}

class AttentionWorker : public Napi::AsyncWorker {
 public:
  AttentionWorker(Napi::Env env, Call&& call)
      : Napi::AsyncWorker(env, "semanticache.attention"), call_(std::move(call)), deferred_(env) {
    for (Napi::Object& o : call_.keepAlive) references_.push_back(Napi::Persistent(o));
    call_.keepAlive.clear();
    call_.problem.heads = call_.heads.data();
    call_.problem.mass = call_.massPointers.empty() ? nullptr : call_.massPointers.data();
    outReference_ = Napi::Persistent(static_cast<Napi::Object>(call_.out));
  }

  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      execute(call_.problem, true);
    } catch (const std::bad_alloc&) {
      SetError("attention: out of memory for the workspace");
    }
  }
  void OnOK() override { deferred_.Resolve(outReference_.Value()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(Napi::RangeError::New(Env(), e.Message()).Value()); }

 private:
  Call call_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> references_;
  Napi::ObjectReference outReference_;
};

Napi::Value AttentionAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    Call call = parseCall(info);
    auto* worker = new AttentionWorker(env, std::move(call));
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  } catch (const ArgError& e) {
    throwJs(env, e);
  }
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const int64_t n = integerArg(info[0], "threads", 1, kMaxThreads);
    globals().threads.store(static_cast<int>(n));  // the pool is resized by the next call that takes it
    return env.Undefined();
  } catch (const ArgError& e) {
    throwJs(env, e);
  }
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), globals().threads.load());
}

Napi::Value SimdLevel(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), globals().table.load()->name);
}

// setSimdLevel('auto' | 'avx512' | 'avx2' | 'scalar')
Napi::Value SetSimdLevel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* expected = "level must be 'auto', 'avx512', 'avx2' or 'scalar'";
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, expected);
  const std::string level = info[0].As<Napi::String>().Utf8Value();
  Globals& g = globals();
  if (level != "auto" && level != "avx512" && level != "avx2" && level != "scalar")
    throw Napi::RangeError::New(env, std::string(expected) + ", got '" + level + "'");
  if ((level == "avx512" && !g.hasAvx512) || (level == "avx2" && !g.hasAvx2))
    throw Napi::RangeError::New(env, "level '" + level + "' is not supported by this CPU or build");
  g.table.store(g.bestUpTo(level));
  return Napi::String::New(env, g.table.load()->name);
}

Napi::Value SupportsAvx2(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), globals().hasAvx2); }

Napi::Value SupportsAvx512(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), globals().hasAvx512);
}

// bandwidthProbe(megabytes, repeats): best-of-repeats read bandwidth (a vector sum split over the pool, the access
// pattern of decode attention) and copy bandwidth (memcpy, bytes read + written), in GB/s.
Napi::Value BandwidthProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const int64_t megabytes = integerArg(info[0], "megabytes", 1, 1 << 14);
    const int64_t repeats = integerArg(info[1], "repeats", 1, 1000);
    const int64_t floats = megabytes * (1 << 20) / 4;
    std::vector<float> source(static_cast<size_t>(floats), 1.0f), target(static_cast<size_t>(floats), 0.0f);
    Globals& g = globals();
    std::lock_guard<std::mutex> lock(g.mutex);
    ThreadPool* pool = poolLocked(g);
    const KernelTable& table = *g.table.load();
    const int participants = pool->size();
    const int64_t pieces = participants * 8;
    const int64_t pieceFloats = (floats + pieces - 1) / pieces;
    std::vector<double> partial(pieces);
    double bestRead = 0.0, bestCopy = 0.0, checksum = 0.0;
    using Clock = std::chrono::steady_clock;
    for (int64_t rep = 0; rep < repeats; ++rep) {
      auto t0 = Clock::now();
      pool->run(pieces, participants, [&](int64_t i, int) {
        const int64_t begin = i * pieceFloats;
        const int64_t end = std::min(floats, begin + pieceFloats);
        partial[i] = begin < end ? table.sumArray(source.data() + begin, end - begin) : 0.0;
      });
      const double readSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
      for (double s : partial) checksum += s;
      t0 = Clock::now();
      pool->run(pieces, participants, [&](int64_t i, int) {
        const int64_t begin = i * pieceFloats;
        const int64_t end = std::min(floats, begin + pieceFloats);
        if (begin < end) std::memcpy(target.data() + begin, source.data() + begin, sizeof(float) * (end - begin));
      });
      const double copySeconds = std::chrono::duration<double>(Clock::now() - t0).count();
      checksum += target[static_cast<size_t>(floats - 1)];
      bestRead = std::max(bestRead, floats * 4.0 / readSeconds / 1e9);
      bestCopy = std::max(bestCopy, floats * 8.0 / copySeconds / 1e9);
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("readGBps", bestRead);
    result.Set("copyGBps", bestCopy);
    result.Set("threads", participants);
    result.Set("checksum", checksum);
    return result;
  } catch (const ArgError& e) {
    throwJs(env, e);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "bandwidthProbe: out of memory");
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  globals();
  exports.Set("attention", Napi::Function::New(env, Attention));
  exports.Set("attentionAsync", Napi::Function::New(env, AttentionAsync));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("simdLevel", Napi::Function::New(env, SimdLevel));
  exports.Set("setSimdLevel", Napi::Function::New(env, SetSimdLevel));
  exports.Set("supportsAvx2", Napi::Function::New(env, SupportsAvx2));
  exports.Set("supportsAvx512", Napi::Function::New(env, SupportsAvx512));
  exports.Set("bandwidthProbe", Napi::Function::New(env, BandwidthProbe));
  return exports;
}

}  // namespace

NODE_API_MODULE(proportional_attention, Init)
