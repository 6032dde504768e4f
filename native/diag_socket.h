// A NETLINK_SOCK_DIAG socket that dumps TCP sockets. Opened once and reused: the first chunk on a fresh
// socket is small, and the open costs syscalls. Not thread-safe: one dump at a time per DiagSocket (the
// kernel answers a second concurrent dump with EBUSY).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "diag_parse.h"

namespace sockmon {

// A failed system call (or a kernel error reply), kept as errno + the call's name for Node-style errors.
struct SysError {
  int error;
  const char* syscall;
};

struct DumpRequest {
  uint32_t states = 0;            // bit (1 << state) for each TCP state wanted
  uint16_t sport = 0;             // exact local-port prefilter, host order; 0 = any
  std::vector<uint8_t> bytecode;  // INET_DIAG_REQ_BYTECODE filter program; empty = none
  bool tcp_info = false;          // ask for INET_DIAG_INFO: a socket lock and ~250 B per socket, so only on demand
};

struct DumpStats {
  uint64_t recv_calls = 0;
  uint64_t bytes = 0;
  uint32_t restarts = 0;
};

class DiagSocket {
 public:
  DiagSocket() = default;
  DiagSocket(const DiagSocket&) = delete;
  DiagSocket& operator=(const DiagSocket&) = delete;
  ~DiagSocket() { Close(); }

  // Dumps the TCP sockets of one family (AF_INET or AF_INET6) into `sink`. Throws SysError. On ENOBUFS,
  // ENOMEM or a truncated read, `reset` is called and the dump restarts.
  void Dump(uint8_t family, const DumpRequest& request, RecordSink& sink, void (*reset)(RecordSink&), DumpStats& stats);
  void Close();

 private:
  void Open();
  void DumpFamily(uint8_t family, const DumpRequest& request, RecordSink& sink, DumpStats& stats);

  int fd_ = -1;
  uint32_t port_id_ = 0;
  uint32_t seq_ = 0;
  std::vector<uint8_t> buffer_;
};

}  // namespace sockmon
