// The watch (local ports, peer CIDRs) in userspace, for what the kernel filter cannot see: close events
// arrive by multicast, unfiltered. Mirrors the kernel's bytecode semantics (net/ipv4/inet_diag.c).
#pragma once

#include <cstdint>
#include <vector>

#include "diag_parse.h"

namespace sockmon {

struct PeerCidr {
  bool ipv4;            // an AF_INET condition: matches IPv4 peers and v4-mapped peers of IPv6 sockets
  uint8_t prefix;       // bits
  uint8_t address[16];  // 4 bytes used for IPv4
};

class PeerMatcher {
 public:
  PeerMatcher(std::vector<uint16_t> ports, std::vector<PeerCidr> cidrs)
      : ports_(std::move(ports)), cidrs_(std::move(cidrs)) {}
  bool Matches(const DiagRecord& record) const;

 private:
  std::vector<uint16_t> ports_;  // empty = any
  std::vector<PeerCidr> cidrs_;  // empty = any
};

}  // namespace sockmon
