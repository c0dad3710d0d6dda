// scratch.cpp -- the process-wide cache behind Scratch (see scratch.h).
#include "scratch.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace minirnn {
namespace {

struct Block {
  void* data;
  size_t bytes;
};

std::mutex cache_mutex;  // guards everything below
size_t bytes_in_use = 0;  // handed out by take_scratch and not yet given back
size_t peak_in_use = 0;
size_t cached_bytes = 0;  // the sum of the cached blocks' sizes
size_t cache_limit = kDefaultCacheLimit;
std::vector<Block>& cache() {
  static std::vector<Block>* blocks = [] {  // never destroyed: safe at exit
    auto* v = new std::vector<Block>();
    v->reserve(kCachedBlocks + 1);  // give_scratch's push_back never reallocates, so never throws
    return v;
  }();
  return *blocks;
}

// `bytes` rounded up to a multiple of 64, as aligned_alloc requires.
size_t aligned_size(size_t bytes) { return (bytes + 63) / 64 * 64; }

void* allocate(size_t bytes) {
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

// Frees the blocks given back longest ago (the front) until the cache holds at most `max_blocks`
// blocks and `max_bytes` bytes. Caller holds cache_mutex.
void trim_cache(size_t max_blocks, size_t max_bytes) {
  std::vector<Block>& blocks = cache();
  size_t drop = 0;
  while (drop < blocks.size() && (blocks.size() - drop > max_blocks || cached_bytes > max_bytes)) {
    std::free(blocks[drop].data);
    cached_bytes -= blocks[drop].bytes;
    drop++;
  }
  blocks.erase(blocks.begin(), blocks.begin() + static_cast<std::ptrdiff_t>(drop));
}

}  // namespace

void* take_scratch(size_t bytes, size_t* capacity) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  void* data = nullptr;
  if (bytes >= kMinCachedBytes) {
    std::vector<Block>& blocks = cache();
    auto best = blocks.end();
    for (auto it = blocks.begin(); it != blocks.end(); ++it)  // best fit, wasting at most half the block
      if (it->bytes >= bytes && it->bytes <= 2 * bytes && (best == blocks.end() || it->bytes < best->bytes)) best = it;
    if (best != blocks.end()) {
      data = best->data;
      *capacity = best->bytes;
      cached_bytes -= best->bytes;
      blocks.erase(best);
    }
  }
  if (data == nullptr) {
    *capacity = aligned_size(bytes);
    data = allocate(*capacity);
  }
  bytes_in_use += *capacity;
  peak_in_use = std::max(peak_in_use, bytes_in_use);
  return data;
}

void give_scratch(void* block, size_t capacity) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  bytes_in_use -= capacity;
  if (capacity < kMinCachedBytes) {
    std::free(block);
    return;
  }
  cache().push_back({block, capacity});  // the back: the most recently given back
  cached_bytes += capacity;
  trim_cache(kCachedBlocks, cache_limit);
}

size_t release_cached_scratch() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  const size_t freed = cached_bytes;
  trim_cache(0, 0);
  return freed;
}

size_t cached_scratch_bytes() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return cached_bytes;
}

size_t scratch_cache_limit() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return cache_limit;
}

void set_scratch_cache_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  cache_limit = bytes;
  trim_cache(kCachedBlocks, cache_limit);
}

size_t scratch_bytes_in_use() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return bytes_in_use;
}

size_t reset_scratch_peak() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  const size_t peak = peak_in_use;
  peak_in_use = bytes_in_use;
  return peak;
}

}  // namespace minirnn
