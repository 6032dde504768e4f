#include "peer_matcher.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace sockmon {

namespace {

bool PrefixMatches(const uint8_t* a, const uint8_t* b, unsigned bits) {
  const unsigned bytes = bits / 8;
  if (std::memcmp(a, b, bytes) != 0) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = uint8_t(0xff << (8 - rest));
  return (a[bytes] & mask) == (b[bytes] & mask);
}

const uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

bool PeerMatcher::Matches(const DiagRecord& record) const {
  if (!ports_.empty() && std::find(ports_.begin(), ports_.end(), record.sport) == ports_.end()) return false;
  // record.peer holds IPv4 peers as ::ffff:a.b.c.d, the same as the v4-mapped peers of IPv6 sockets.
  const bool mapped = std::memcmp(record.peer, kMappedPrefix, sizeof(kMappedPrefix)) == 0;
  // A listener's destroy event (a restart of the server; its state is CLOSE by then) is no connection: its
  // peer is the wildcard address, 0.0.0.0 or ::, which no connection has.
  static const uint8_t kZero[16] = {};
  if (std::memcmp(record.peer + (mapped ? 12 : 0), kZero, mapped ? 4 : 16) == 0) return false;
  if (cidrs_.empty()) return true;
  for (const PeerCidr& cidr : cidrs_) {
    if (cidr.ipv4 ? mapped && PrefixMatches(record.peer + 12, cidr.address, cidr.prefix)
                  : record.family == AF_INET6 && PrefixMatches(record.peer, cidr.address, cidr.prefix)) {
      return true;
    }
  }
  return false;
}

}  // namespace sockmon
