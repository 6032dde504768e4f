// The listening sockets of the watched ports, reduced to one entry per (family, local address, port): the
// accept queue (idiag_rqueue) and its limit (idiag_wqueue). SO_REUSEPORT groups (several sockets on one
// address and port) are summed. Bounded: at most kMaxListeners entries, the rest only counted as dropped.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "diag_parse.h"
#include "socket_counts.h"

namespace sockmon {

struct ListenEntry {
  uint8_t family;     // AF_INET or AF_INET6
  uint8_t local[16];  // IPv4 as ::ffff:a.b.c.d
  uint16_t port;
  uint32_t queue = 0;  // connections waiting to be accepted
  uint32_t limit = 0;  // backlog
  uint32_t sockets = 0;
};

class ListenTable : public RecordSink {
 public:
  // One entry per listening socket of the watched ports is a few per service; the cap only guards against
  // a host with thousands of listeners on those ports.
  static constexpr size_t kMaxListeners = 256;

  void Clear();
  void Add(const DiagRecord& record) override;
  // Adds another table's entries (the other family's lane), within the same cap.
  void Merge(const ListenTable& other);

  const std::vector<ListenEntry>& entries() const { return entries_; }
  // Listening sockets left out because the table was full.
  uint64_t dropped() const { return dropped_; }

 private:
  void AddEntry(const ListenEntry& entry);

  std::vector<ListenEntry> entries_;  // few: a linear search beats hashing here
  CookieSet seen_;
  uint64_t dropped_ = 0;
};

}  // namespace sockmon
