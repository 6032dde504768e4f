// Reduces a dump to counts per (peer, local port, state). A dump is not atomic: a socket that moves
// (ESTABLISHED -> TIME-WAIT) while the kernel walks its table can be reported twice, so records are
// deduplicated by cookie and every socket is counted once, in the state it was first seen in.
#pragma once

#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <utility>
#include <vector>

#include "diag_parse.h"

namespace sockmon {

struct CountKey {
  uint8_t peer[16];
  uint16_t port;
  uint8_t state;

  bool operator==(const CountKey& other) const {
    return port == other.port && state == other.state && std::memcmp(peer, other.peer, 16) == 0;
  }
};

struct CountKeyHash {
  size_t operator()(const CountKey& key) const {
    uint64_t a, b;
    std::memcpy(&a, key.peer, 8);
    std::memcpy(&b, key.peer + 8, 8);
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) ^ (uint64_t(key.port) << 8 | key.state);
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return size_t(h ^ (h >> 32));
  }
};

// An open-addressing set of cookies: one multiply and a probe per socket, no allocation per insert.
class CookieSet {
 public:
  void Clear();
  // Returns false when the cookie was already there.
  bool Insert(uint64_t cookie);
  bool Contains(uint64_t cookie) const;
  void swap(CookieSet& other) noexcept {
    slots_.swap(other.slots_);
    std::swap(size_, other.size_);
    std::swap(has_zero_, other.has_zero_);
  }

 private:
  void Grow();
  std::vector<uint64_t> slots_;  // 0 marks an empty slot; cookie 0 is kept aside
  size_t size_ = 0;
  bool has_zero_ = false;
};

struct GroupCounts {
  uint32_t sockets = 0;
  // Of those, live connections: full sockets that will send a destroy event when they end, that is
  // neither TIME-WAIT minisockets, request sockets (SYN_RECV) nor listeners.
  uint32_t live = 0;
};

using CountMap = std::unordered_map<CountKey, GroupCounts, CountKeyHash>;
// Per (peer, port) (state 0 in the key): ESTABLISHED sockets by idle time. Bucket i counts idle times in
// (bounds[i-1], bounds[i]] ms; the last bucket, those above every bound.
using IdleMap = std::unordered_map<CountKey, std::vector<uint32_t>, CountKeyHash>;
// Per (peer, port) (state 0 in the key): ESTABLISHED sockets by data segments received so far
// (tcpi_data_segs_in: for small HTTP requests, requests served on the connection up to now), bucketed like
// IdleMap, and the sum of those segments.
struct LiveSegments {
  std::vector<uint32_t> buckets;
  uint64_t sum = 0;
};
using LiveSegmentsMap = std::unordered_map<CountKey, LiveSegments, CountKeyHash>;
// Per (peer, port) (state 0 in the key): TIME-WAIT sockets whose cookie the previous dump did not have.
using NewTimeWaitMap = std::unordered_map<CountKey, uint32_t, CountKeyHash>;

class SocketCounts : public RecordSink {
 public:
  explicit SocketCounts(std::vector<uint32_t> idle_bounds_ms = {}, std::vector<uint32_t> live_segment_bounds = {})
      : idle_bounds_ms_(std::move(idle_bounds_ms)), live_segment_bounds_(std::move(live_segment_bounds)) {}
  // Clears the counts, keeping the tables' capacity, and sets the idle bounds (ascending ms) and the live
  // segment bounds (ascending) of the next dump; empty bounds: not counted.
  void Reset(const std::vector<uint32_t>& idle_bounds_ms, const std::vector<uint32_t>& live_segment_bounds = {}) {
    idle_bounds_ms_ = idle_bounds_ms;
    live_segment_bounds_ = live_segment_bounds;
    Clear();
  }
  void Clear();
  void Add(const DiagRecord& record) override;
  // After a whole dump: its TIME-WAIT cookies become the ones the next dump's are compared with. Until the
  // first call there is nothing to compare with, and no TIME-WAIT socket counts as new.
  void CommitTimeWait() {
    time_wait_before_.swap(time_wait_now_);
    has_time_wait_before_ = true;
  }

  uint64_t scanned() const { return scanned_; }
  uint64_t duplicates() const { return duplicates_; }
  const CountMap& counts() const { return counts_; }
  const IdleMap& idle() const { return idle_; }
  const LiveSegmentsMap& live_segments() const { return live_segments_; }
  size_t live_segment_buckets() const { return live_segment_bounds_.size() + 1; }
  const NewTimeWaitMap& new_time_wait() const { return new_time_wait_; }
  size_t idle_buckets() const { return idle_bounds_ms_.size() + 1; }

 private:
  void AddIdle(const CountKey& key, uint32_t idle_ms);
  void AddLiveSegments(const CountKey& key, uint32_t segments);

  std::vector<uint32_t> idle_bounds_ms_;       // ascending
  std::vector<uint32_t> live_segment_bounds_;  // ascending
  CountMap counts_;
  IdleMap idle_;
  LiveSegmentsMap live_segments_;
  CookieSet seen_;
  // A TIME-WAIT socket lives 60 s and keeps the cookie of the connection it ends: a cookie not in the
  // previous dump is a connection that ended in TIME-WAIT since, as long as dumps are less than 60 s apart.
  // Bounded by the TIME-WAIT population the dump returns.
  CookieSet time_wait_now_;
  CookieSet time_wait_before_;
  bool has_time_wait_before_ = false;
  NewTimeWaitMap new_time_wait_;
  uint64_t scanned_ = 0;
  uint64_t duplicates_ = 0;
};

}  // namespace sockmon
