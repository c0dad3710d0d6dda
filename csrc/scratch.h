// scratch.h -- reusable memory for the kernels' temporary buffers.
//
// Memory fresh from the OS costs a page fault and the zeroing of every 4 KiB page on first
// touch, for every call of a kernel that allocates its workspace anew. A Scratch
// takes a block from a small process-wide cache of released blocks (the smallest one that fits
// and is at most twice the request, else a new allocation) and gives it back to the cache when it
// goes out of scope; the bindings also back large result arrays (workspace, y, dx, matmul) with it.
// Requests under kMinCachedBytes go straight to the allocator. The cache keeps at most
// kCachedBlocks blocks and at most scratch_cache_limit() bytes (default kDefaultCacheLimit),
// dropping the blocks given back longest ago first: layers of changing sizes (a sweep over T)
// would otherwise leave 16 ever larger blocks behind. release_cached_scratch() frees them all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace minirnn {

constexpr size_t kMinCachedBytes = size_t(1) << 20;
constexpr size_t kCachedBlocks = 16;
constexpr size_t kDefaultCacheLimit = size_t(512) << 20;

// Raw blocks: take one of at least `bytes` (64-byte aligned, uninitialised), give it back.
void* take_scratch(size_t bytes, size_t* capacity);
void give_scratch(void* block, size_t capacity);
// Frees every cached block; returns the bytes freed.
size_t release_cached_scratch();
// The most bytes the cache keeps; setting it frees cached blocks (oldest first) down to it.
size_t scratch_cache_limit();
void set_scratch_cache_limit(size_t bytes);
// Bytes held in the cache now.
size_t cached_scratch_bytes();
// Bytes handed out and not yet given back (kernel temporaries, arrays the bindings returned).
size_t scratch_bytes_in_use();
// The most bytes in use at once since the last reset; resets it to the bytes in use now.
size_t reset_scratch_peak();

// n uninitialised elements of T for one scope; movable, not copyable.
template <typename T>
class Scratch {
 public:
  Scratch() = default;
  explicit Scratch(int64_t n) {
    if (n > 0) data_ = static_cast<T*>(take_scratch(sizeof(T) * n, &capacity_));
  }
  Scratch(Scratch&& other) noexcept { swap(other); }
  Scratch& operator=(Scratch&& other) noexcept {
    Scratch(std::move(other)).swap(*this);
    return *this;
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    if (data_ != nullptr) give_scratch(data_, capacity_);
  }
  T* data() const { return data_; }

 private:
  void swap(Scratch& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(capacity_, other.capacity_);
  }
  T* data_ = nullptr;
  size_t capacity_ = 0;  // bytes
};

}  // namespace minirnn
