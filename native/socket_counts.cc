#include "socket_counts.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace sockmon {

namespace {
inline size_t SlotOf(uint64_t cookie, size_t mask) { return size_t((cookie * 0x9E3779B97F4A7C15ull) >> 17) & mask; }
}  // namespace

uint64_t* CookieSet::Map(size_t slots) {
  // Anonymous mappings come zero-filled, and their pages are only backed by memory once touched.
  void* memory = mmap(nullptr, slots * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) std::abort();  // as operator new without exceptions: out of memory
  return static_cast<uint64_t*>(memory);
}

void CookieSet::Release() {
  if (slots_ != nullptr) munmap(slots_, capacity_ * sizeof(uint64_t));
  slots_ = nullptr;
  capacity_ = 0;
}

bool CookieSet::Clear() {
  const bool shrink = shrink_.Observe(size_, capacity_, kMinSlots);
  if (shrink) {
    // Room for the largest of the low dumps at a quarter load: it can double before the table grows again.
    size_t slots = kMinSlots;
    while (slots < shrink_.peak() * 4) slots *= 2;
    shrink_.Restart();
    Release();
    slots_ = Map(slots);
    capacity_ = slots;
  } else if (slots_ != nullptr) {
    std::memset(slots_, 0, capacity_ * sizeof(uint64_t));
  }
  size_ = 0;
  has_zero_ = false;
  return shrink;
}

bool CookieSet::Insert(uint64_t cookie) {
  if (cookie == 0) {
    if (has_zero_) return false;
    has_zero_ = true;
    return true;
  }
  if ((size_ + 1) * 2 > capacity_) Grow();
  const size_t mask = capacity_ - 1;
  for (size_t i = SlotOf(cookie, mask);; i = (i + 1) & mask) {
    if (slots_[i] == cookie) return false;
    if (slots_[i] == 0) {
      slots_[i] = cookie;
      ++size_;
      return true;
    }
  }
}

bool CookieSet::Contains(uint64_t cookie) const {
  if (cookie == 0) return has_zero_;
  if (slots_ == nullptr) return false;
  const size_t mask = capacity_ - 1;
  for (size_t i = SlotOf(cookie, mask);; i = (i + 1) & mask) {
    if (slots_[i] == cookie) return true;
    if (slots_[i] == 0) return false;
  }
}

void CookieSet::Grow() {
  uint64_t* old = slots_;
  const size_t old_capacity = capacity_;
  capacity_ = std::max(kMinSlots, old_capacity * 2);
  slots_ = Map(capacity_);
  const size_t mask = capacity_ - 1;
  for (size_t j = 0; j < old_capacity; ++j) {
    const uint64_t cookie = old[j];
    if (cookie == 0) continue;
    size_t i = SlotOf(cookie, mask);
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = cookie;
  }
  if (old != nullptr) munmap(old, old_capacity * sizeof(uint64_t));
}

namespace {
// Empties a per-dump hash map; after a spike (ShrinkAfterSpike), also gives back its bucket array.
template <typename Map>
bool ClearMap(Map& map, ShrinkAfterSpike& shrink) {
  const bool shrunk = shrink.Observe(map.size(), map.bucket_count(), 64);
  map.clear();
  if (shrunk) {
    shrink.Restart();
    Map().swap(map);  // rehash(0) may keep the buckets; a fresh map does not
  }
  return shrunk;
}
}  // namespace

void SocketCounts::Clear() {
  bool shrunk = ClearMap(counts_, counts_shrink_);
  shrunk |= ClearMap(idle_, idle_shrink_);
  shrunk |= ClearMap(live_segments_, live_segments_shrink_);
  shrunk |= seen_.Clear();
  shrunk |= time_wait_now_.Clear();
  shrunk |= ClearMap(new_time_wait_, new_time_wait_shrink_);
#ifdef __GLIBC__
  // The maps' nodes were small malloc chunks: hand the pages they leave free back to the system too.
  if (shrunk) malloc_trim(0);
#endif
  scanned_ = 0;
  duplicates_ = 0;
}

void SocketCounts::Add(const DiagRecord& record) {
  ++scanned_;
  if (!seen_.Insert(record.cookie)) {
    ++duplicates_;
    return;
  }
  CountKey key;
  std::memcpy(key.peer, record.peer, 16);
  key.port = record.sport;
  key.state = record.state;
  GroupCounts& group = counts_[key];
  ++group.sockets;
  constexpr uint8_t kSynRecv = 3, kListen = 10, kEstablished = 1, kTimeWait = 6;
  if (record.timer != kTimeWaitTimer && record.state != kSynRecv && record.state != kListen) ++group.live;
  // Only a real TIME-WAIT: a FIN-WAIT-2 minisocket (state 5) has not had the peer's FIN yet, and counts when
  // it gets it, under the same cookie.
  if (record.timer == kTimeWaitTimer && record.state == kTimeWait) {
    time_wait_now_.Insert(record.cookie);
    if (has_time_wait_before_ && !time_wait_before_.Contains(record.cookie)) {
      CountKey tw_key = key;
      tw_key.state = 0;
      ++new_time_wait_[tw_key];
    }
  }
  if (record.has_tcp_info && record.state == kEstablished) {
    key.state = 0;
    if (!idle_bounds_ms_.empty()) AddIdle(key, record.last_data_recv_ms);
    if (!live_segment_bounds_.empty()) AddLiveSegments(key, record.data_segs_in);
  }
}

void SocketCounts::AddLiveSegments(const CountKey& key, uint32_t segments) {
  LiveSegments& live = live_segments_[key];
  if (live.buckets.empty()) live.buckets.assign(live_segment_buckets(), 0);
  const size_t bucket = std::lower_bound(live_segment_bounds_.begin(), live_segment_bounds_.end(), segments) -
                        live_segment_bounds_.begin();
  ++live.buckets[bucket];
  live.sum += segments;
}

void SocketCounts::AddIdle(const CountKey& key, uint32_t idle_ms) {
  std::vector<uint32_t>& buckets = idle_[key];
  if (buckets.empty()) buckets.assign(idle_buckets(), 0);
  const size_t bucket =
      std::lower_bound(idle_bounds_ms_.begin(), idle_bounds_ms_.end(), idle_ms) - idle_bounds_ms_.begin();
  ++buckets[bucket];
}

}  // namespace sockmon
