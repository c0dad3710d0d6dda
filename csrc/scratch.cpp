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
std::vector<Block>& cache() {
  static std::vector<Block>* blocks = new std::vector<Block>();  // never destroyed: safe at exit
  return *blocks;
}

void* allocate(size_t bytes) {
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void* take_scratch(size_t bytes, size_t* capacity) {
  if (bytes >= kMinCachedBytes) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    std::vector<Block>& blocks = cache();
    auto best = blocks.end();
    for (auto it = blocks.begin(); it != blocks.end(); ++it)
      if (it->bytes >= bytes && (best == blocks.end() || it->bytes < best->bytes)) best = it;
    if (best != blocks.end()) {
      const Block b = *best;
      blocks.erase(best);
      *capacity = b.bytes;
      return b.data;
    }
  }
  *capacity = (bytes + 63) / 64 * 64;
  return allocate(bytes);
}

void give_scratch(void* block, size_t capacity) {
  if (capacity < kMinCachedBytes) {
    std::free(block);
    return;
  }
  std::lock_guard<std::mutex> lock(cache_mutex);
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

}  // namespace minirnn
