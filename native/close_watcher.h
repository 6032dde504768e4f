// Counts watched TCP connections as they end, from the kernel's destroy events (the multicast groups
// SKNLGRP_INET_TCP_DESTROY and SKNLGRP_INET6_TCP_DESTROY of NETLINK_SOCK_DIAG: no capability needed). A
// full socket is destroyed once, whoever closed first (into TIME-WAIT, or after the peer's FIN), so each
// connection counts once. The events are read on a thread of its own; JavaScript takes the counts since its
// last take at each scrape and keeps the totals, so what is held here is bounded by what closes between two
// scrapes, and by kMaxPendingKeys whatever the network does.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "diag_socket.h"
#include "peer_matcher.h"
#include "socket_counts.h"

namespace sockmon {

class CloseWatcher : public RecordSink {
 public:
  // (peer, port; state 0) -> connections closed since the last Take(). Past kMaxPendingKeys distinct keys,
  // closes count under the all-zero peer `::` of their port (no TCP peer has that address): JavaScript
  // counts those as peer="other".
  using Closed = std::unordered_map<CountKey, uint64_t, CountKeyHash>;
  static constexpr size_t kMaxPendingKeys = 16384;

  CloseWatcher(PeerMatcher matcher, int receive_buffer_bytes);  // throws SysError
  ~CloseWatcher() override;
  CloseWatcher(const CloseWatcher&) = delete;
  CloseWatcher& operator=(const CloseWatcher&) = delete;

  void Stop();
  Closed Take();  // the closes since the last Take(), and a fresh start
  uint64_t overruns() const { return overruns_; }  // ENOBUFS: events were dropped by the kernel
  uint64_t events() const { return events_; }      // destroy events received, watched or not
  int error() const { return error_; }             // errno that stopped the thread, or 0

  void Add(const DiagRecord& record) override;  // called on the watcher thread

 private:
  void Run();

  PeerMatcher matcher_;
  int fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes the thread from poll()
  std::thread thread_;
  std::mutex mutex_;
  Closed closed_;
  std::atomic<uint64_t> overruns_{0};
  std::atomic<uint64_t> events_{0};
  std::atomic<int> error_{0};
};

}  // namespace sockmon
