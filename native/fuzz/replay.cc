// Replays recorded sock_diag dumps (the fuzz corpus: real dumps written by `ss -D`) through the parser and prints
// every record it yields, one line each. test/e2e/old_host.test.ts builds it for x64 and for arm64 (the release's
// cross compiler) and compares the two outputs: the parser reads the same bytes the same way on both.
#include <linux/netlink.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "../diag_parse.h"

namespace {

class PrintSink : public sockmon::RecordSink {
 public:
  void Add(const sockmon::DiagRecord& r) override {
    std::printf("family=%u state=%u timer=%u sport=%u peer=", r.family, r.state, r.timer, r.sport);
    for (uint8_t byte : r.peer) std::printf("%02x", byte);
    std::printf(" local=");
    for (uint8_t byte : r.local) std::printf("%02x", byte);
    std::printf(" rqueue=%" PRIu32 " wqueue=%" PRIu32 " cookie=%" PRIu64 " info=%d last_data_recv=%" PRIu32
                " data_segs_in=%" PRIu32 "\n",
                r.rqueue, r.wqueue, r.cookie, r.has_tcp_info ? 1 : 0, r.last_data_recv_ms, r.data_segs_in);
  }
};

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "replay: cannot read %s\n", argv[i]);
      return 1;
    }
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::printf("file %s: %zu bytes\n", std::strrchr(argv[i], '/') ? std::strrchr(argv[i], '/') + 1 : argv[i],
                bytes.size());
    // One message per chunk: a recording holds several dumps (IPv4, then IPv6), each ending in NLMSG_DONE, and the
    // parser stops at a chunk's NLMSG_DONE. Each message is accepted with its own sequence number.
    PrintSink sink;
    size_t offset = 0;
    while (bytes.size() - offset >= sizeof(nlmsghdr)) {
      nlmsghdr header;
      std::memcpy(&header, bytes.data() + offset, sizeof(header));
      if (header.nlmsg_len < sizeof(header) || header.nlmsg_len > bytes.size() - offset) break;
      const sockmon::ChunkResult result =
          sockmon::ParseDiagChunk(bytes.data() + offset, header.nlmsg_len, header.nlmsg_seq, 0, sink);
      if (result.status != sockmon::ChunkStatus::kMore) {
        std::printf("status=%d error=%d\n", static_cast<int>(result.status), result.error);
      }
      offset += NLMSG_ALIGN(header.nlmsg_len);
    }
    std::printf("end at %zu of %zu bytes\n", offset, bytes.size());
  }
  return 0;
}
