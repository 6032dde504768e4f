#include "socket_counts.h"

#include <algorithm>

namespace sockmon {

namespace {
inline size_t SlotOf(uint64_t cookie, size_t mask) { return size_t((cookie * 0x9E3779B97F4A7C15ull) >> 17) & mask; }
}  // namespace

void CookieSet::Clear() {
  std::fill(slots_.begin(), slots_.end(), 0);
  size_ = 0;
  has_zero_ = false;
}

bool CookieSet::Insert(uint64_t cookie) {
  if (cookie == 0) {
    if (has_zero_) return false;
    has_zero_ = true;
    return true;
  }
  if ((size_ + 1) * 2 > slots_.size()) Grow();
  const size_t mask = slots_.size() - 1;
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
  if (slots_.empty()) return false;
  const size_t mask = slots_.size() - 1;
  for (size_t i = SlotOf(cookie, mask);; i = (i + 1) & mask) {
    if (slots_[i] == cookie) return true;
    if (slots_[i] == 0) return false;
  }
}

void CookieSet::Grow() {
  std::vector<uint64_t> old;
  old.swap(slots_);
  slots_.assign(std::max<size_t>(1024, old.size() * 2), 0);
  const size_t mask = slots_.size() - 1;
  for (uint64_t cookie : old) {
    if (cookie == 0) continue;
    size_t i = SlotOf(cookie, mask);
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = cookie;
  }
}

void SocketCounts::Clear() {
  counts_.clear();
  idle_.clear();
  live_segments_.clear();
  seen_.Clear();
  time_wait_now_.Clear();
  new_time_wait_.clear();
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
