// Counts watched TCP connections as they end, from the kernel's destroy events (the multicast groups
// SKNLGRP_INET_TCP_DESTROY and SKNLGRP_INET6_TCP_DESTROY of NETLINK_SOCK_DIAG: no capability needed). A
// full socket is destroyed once, whoever closed first (into TIME-WAIT, or after the peer's FIN), so each
// connection counts once. The events are read on a thread of its own; JavaScript takes the counts since its
// last take at each scrape and keeps the totals, so what is held here is bounded by what closes between two
// scrapes, and by kMaxPendingKeys whatever the network does.
//
// The close path costs little (design.md, "The close path"): a classic BPF program (src/close_filter.ts)
// drops unwatched events in the kernel, and the thread wakes at most about every kPace, draining the
// whole queue each time; the receive buffer holds what arrives in between. Lost events are the kernel's
// own count for the socket (SO_MEMINFO, SK_MEMINFO_DROPS).
#pragma once

#include <linux/filter.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "diag_socket.h"
#include "peer_matcher.h"
#include "socket_counts.h"

namespace sockmon {

// Histogram bounds for the life of closed connections (ascending): bucket i counts values in
// (bounds[i-1], bounds[i]], the bucket after the last bound those above every bound.
struct LifeBounds {
  std::vector<uint32_t> segments;  // tcpi_data_segs_in
  std::vector<uint32_t> idle_ms;   // tcpi_last_data_recv at close
};

class CloseWatcher : public RecordSink {
 public:
  static constexpr size_t kMaxLifeBuckets = 24;  // bounds + 1, per histogram

  // What the closes of one (peer, port) did, since the last Take(). The histograms count the closes whose
  // event carried tcp_info (all of them on Linux 4.6+); buckets are not cumulative.
  struct Closes {
    uint64_t closed = 0;
    uint64_t segments_sum = 0;
    uint64_t idle_sum_ms = 0;
    std::array<uint32_t, kMaxLifeBuckets> segments{};
    std::array<uint32_t, kMaxLifeBuckets> idle{};
  };

  // (peer, port; state 0) -> the closes since the last Take(). Past kMaxPendingKeys distinct keys,
  // closes count under the all-zero peer `::` of their port (no TCP peer has that address): JavaScript
  // counts those as peer="other".
  using Closed = std::unordered_map<CountKey, Closes, CountKeyHash>;
  static constexpr size_t kMaxPendingKeys = 16384;

  // Pause after each drain. Counts are read at scrape time, so tens of milliseconds of delay cost nothing.
  static constexpr std::chrono::milliseconds kPace{20};

  // `filter`: the kernel-side program (empty: none). Throws SysError.
  // `life`: at most kMaxLifeBuckets - 1 bounds each (throws SysError EINVAL beyond).
  CloseWatcher(PeerMatcher matcher, int receive_buffer_bytes, std::vector<sock_filter> filter = {},
               LifeBounds life = {});
  ~CloseWatcher() override;
  CloseWatcher(const CloseWatcher&) = delete;
  CloseWatcher& operator=(const CloseWatcher&) = delete;

  void Stop();
  Closed Take();                               // the closes since the last Take(), and a fresh start
  uint64_t drops() const;                      // events the kernel dropped: our receive buffer was full
  uint64_t events() const { return events_; }  // destroy events received (those the filter let through)
  int error() const { return error_; }         // errno that stopped the thread, or 0

  const LifeBounds& life_bounds() const { return life_; }

  void Add(const DiagRecord& record) override;  // called on the watcher thread, with mutex_ held

 private:
  void Run();
  bool Drain(std::vector<uint8_t>& buffer);     // reads until the queue is empty; false on a fatal error
  bool Pause(std::chrono::milliseconds pause);  // false when Stop() was asked for
  uint64_t ReadDrops() const;                   // with drops_mutex_ held

  PeerMatcher matcher_;
  LifeBounds life_;
  int fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes the thread from poll()
  std::thread thread_;
  std::mutex mutex_;
  Closed closed_;
  mutable std::mutex drops_mutex_;
  mutable uint32_t drops_seen_ = 0;  // SK_MEMINFO_DROPS is 32 bits: drops_ extends it across wrap-arounds
  mutable uint64_t drops_ = 0;
  std::atomic<uint64_t> events_{0};
  std::atomic<int> error_{0};
};

}  // namespace sockmon
