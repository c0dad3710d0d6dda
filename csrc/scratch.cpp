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

std::mutex cache_mutex;
size_t bytes_in_use = 0;  // handed out by take_scratch and not yet given back (under cache_mutex)
size_t peak_in_use = 0;
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
  std::vector<Block>& blocks = cache();
  blocks.push_back({block, capacity});
  if (blocks.size() > kCachedBlocks) {
    auto smallest = std::min_element(blocks.begin(), blocks.end(),
                                     [](const Block& a, const Block& b) { return a.bytes < b.bytes; });
    std::free(smallest->data);
    blocks.erase(smallest);
  }
}

size_t release_cached_scratch() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  size_t freed = 0;
  for (const Block& b : cache()) {
    freed += b.bytes;
    std::free(b.data);
  }
  cache().clear();
  return freed;
}

size_t cached_scratch_bytes() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  size_t total = 0;
  for (const Block& b : cache()) total += b.bytes;
  return total;
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
