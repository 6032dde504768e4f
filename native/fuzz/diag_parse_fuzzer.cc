// libFuzzer target: arbitrary bytes as one recv()'d chunk of sock_diag replies, through the parser, the
// counting (dedup, idle buckets), the listener table (queues, cap) and the close-event matcher. Built and run by
// test/fuzz.test.ts with AddressSanitizer and UBSan; the seed corpus (corpus/) is real dumps written by `ss -D`.
#include <cstring>

#include "../diag_parse.h"
#include "../listen_table.h"
#include "../peer_matcher.h"
#include "../socket_counts.h"

namespace {

class Sink : public sockmon::RecordSink {
 public:
  void Add(const sockmon::DiagRecord& record) override {
    counts.Add(record);
    listeners.Add(record);
    matched += matcher.Matches(record);
  }
  sockmon::SocketCounts counts{{1000, 5000, 60000}};
  sockmon::ListenTable listeners;
  sockmon::PeerMatcher matcher{
      {80, 8080}, {{true, 27, {203, 0, 113, 96}}, {false, 32, {0x20, 0x01, 0x0d, 0xb8}}, {true, 8, {127}}}};
  size_t matched = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Sink sink;
  sink.counts.Clear();
  sink.listeners.Clear();
  // Accept the first message's sequence number, as a real dump's replies all carry the request's.
  uint32_t seq = 0;
  if (size >= 12) std::memcpy(&seq, data + 8, sizeof(seq));
  sockmon::ParseDiagChunk(data, size, seq, 0, sink);
  return 0;
}
