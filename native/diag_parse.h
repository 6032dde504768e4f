// Walks the bytes of netlink sock_diag replies. Pure: no syscalls, no allocation, so it can be fed
// arbitrary bytes (tests, fuzzing). The socket code in diag_socket.cc owns the I/O.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sockmon {

// One socket as the kernel reported it, reduced to what sockmon counts.
struct DiagRecord {
  uint8_t family;     // AF_INET or AF_INET6 as the socket is
  uint8_t state;      // TCP state number (1 ESTABLISHED ... 11 CLOSING)
  uint8_t timer;      // idiag_timer: 3 only for TIME-WAIT minisockets (whatever their reported substate)
  bool has_tcp_info;  // the reply carried INET_DIAG_INFO (asked for, and a full socket)
  uint16_t sport;     // local port, host order
  uint8_t peer[16];   // peer address, IPv4 as ::ffff:a.b.c.d so v4-mapped peers fold onto it
  uint8_t local[16];  // local address, in the same form (the family above tells an IPv4 socket from a v4-mapped one)
  uint32_t rqueue;    // idiag_rqueue: for a LISTEN socket, connections waiting to be accepted
  uint32_t wqueue;    // idiag_wqueue: for a LISTEN socket, its backlog (the accept queue's limit)
  uint64_t cookie;    // the kernel's socket cookie: unique, never reused
  uint32_t last_data_recv_ms;  // tcp_info.tcpi_last_data_recv: time since data last arrived
  uint32_t data_segs_in;       // tcp_info.tcpi_data_segs_in: segments with data received (0 from kernels before 4.6)
};

constexpr uint8_t kTimeWaitTimer = 3;

enum class ChunkStatus {
  kMore,   // the dump goes on: recv again
  kDone,   // NLMSG_DONE with status 0
  kError,  // NLMSG_ERROR or NLMSG_DONE with a negative errno, or malformed bytes: see `error`
};

struct ChunkResult {
  ChunkStatus status = ChunkStatus::kMore;
  int error = 0;  // positive errno when status is kError (EPROTO for malformed input)
};

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void Add(const DiagRecord& record) = 0;
};

// Parses one recv()'d chunk. Messages whose seq or port id are not ours are skipped (a stale reply of an
// aborted dump, say). `port_id` 0 accepts any.
ChunkResult ParseDiagChunk(const uint8_t* data, size_t len, uint32_t seq, uint32_t port_id, RecordSink& sink);

}  // namespace sockmon
