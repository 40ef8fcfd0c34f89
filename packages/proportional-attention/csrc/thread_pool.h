// A small persistent pool: the calling thread plus (size − 1) workers drain one job's task counter together.
// Workers spin briefly after a job (decode calls arrive back to back, once per layer), then sleep on a condvar.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define PA_PAUSE() _mm_pause()
#else
#define PA_PAUSE() std::this_thread::yield()
#endif

namespace pa {

class ThreadPool {
 public:
  using Task = std::function<void(int64_t task, int participant)>;

  explicit ThreadPool(int size) : size_(size < 1 ? 1 : size) {
    for (int id = 1; id < size_; ++id) workers_.emplace_back([this, id] { workerLoop(id); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(wakeMutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wakeCv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  // Runs task(i, participant) for i in [0, count) on min(participants, size) threads, the caller included.
  // Not reentrant: callers serialise through jobMutex().
  void run(int64_t count, int participants, const Task& task) {
    if (participants > size_) participants = size_;
    if (participants <= 1 || count <= 1) {
      for (int64_t i = 0; i < count; ++i) task(i, 0);
      return;
    }
    task_ = &task;
    taskCount_ = count;
    participants_ = participants;
    nextTask_.store(0, std::memory_order_relaxed);
    busyWorkers_.store(size_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(wakeMutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wakeCv_.notify_all();
    drain(0);
    while (busyWorkers_.load(std::memory_order_acquire) != 0) PA_PAUSE();
    task_ = nullptr;
  }

  std::mutex& jobMutex() { return jobMutex_; }

 private:
  void drain(int participant) {
    for (;;) {
      int64_t i = nextTask_.fetch_add(1, std::memory_order_relaxed);
      if (i >= taskCount_) return;
      (*task_)(i, participant);
    }
  }

  void workerLoop(int id) {
    uint64_t seen = 0;
    for (;;) {
      uint64_t current = generation_.load(std::memory_order_acquire);
      if (current == seen) {
        const auto spinUntil = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
        for (int i = 0;; ++i) {
          PA_PAUSE();
          current = generation_.load(std::memory_order_acquire);
          if (current != seen) break;
          if ((i & 63) == 63 && std::chrono::steady_clock::now() > spinUntil) break;
        }
      }
      if (current == seen) {
        std::unique_lock<std::mutex> lock(wakeMutex_);
        wakeCv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        current = generation_.load(std::memory_order_acquire);
      }
      seen = current;
      if (stop_) return;
      if (id < participants_) drain(id);
      busyWorkers_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  static constexpr int kSpinMicros = 20;  // about one condvar wake-up; longer would steal CPU from ORT
  const int size_;
  std::vector<std::thread> workers_;
  std::mutex jobMutex_;
  std::mutex wakeMutex_;
  std::condition_variable wakeCv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> nextTask_{0};
  std::atomic<int> busyWorkers_{0};
  const Task* task_ = nullptr;
  int64_t taskCount_ = 0;
  int participants_ = 1;
  bool stop_ = false;
};

}  // namespace pa
