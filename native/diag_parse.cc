#include "diag_parse.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace sockmon {

namespace {

// Reads a message's status int (NLMSG_DONE payload, or nlmsgerr.error): 0 or a negative errno.
bool ReadStatus(const uint8_t* payload, size_t payload_len, int* status) {
  if (payload_len < sizeof(int)) return false;
  std::memcpy(status, payload, sizeof(int));
  return true;
}

// tcp_info is read by offset, not by casting to the build machine's struct tcp_info, which may be older or
// newer than the running kernel's (the kernel sends min(its size, room) bytes).
constexpr size_t kLastDataRecvOffset = 52;  // offsetof(struct tcp_info, tcpi_last_data_recv)
constexpr size_t kDataSegsInOffset = 152;   // offsetof(struct tcp_info, tcpi_data_segs_in), kernel 4.6+

void ReadAttributes(const uint8_t* data, size_t len, DiagRecord* out) {
  size_t offset = 0;
  while (len - offset >= NLA_HDRLEN) {
    nlattr attr;
    std::memcpy(&attr, data + offset, sizeof(attr));
    if (attr.nla_len < NLA_HDRLEN || attr.nla_len > len - offset) return;
    const size_t value_len = attr.nla_len - NLA_HDRLEN;
    if ((attr.nla_type & NLA_TYPE_MASK) == INET_DIAG_INFO && value_len >= kLastDataRecvOffset + sizeof(uint32_t)) {
      std::memcpy(&out->last_data_recv_ms, data + offset + NLA_HDRLEN + kLastDataRecvOffset, sizeof(uint32_t));
      out->has_tcp_info = true;
      if (value_len >= kDataSegsInOffset + sizeof(uint32_t)) {
        std::memcpy(&out->data_segs_in, data + offset + NLA_HDRLEN + kDataSegsInOffset, sizeof(uint32_t));
      }
    }
    const size_t step = NLA_ALIGN(attr.nla_len);
    if (step >= len - offset) return;
    offset += step;
  }
}

bool ReadRecord(const uint8_t* payload, size_t payload_len, DiagRecord* out) {
  inet_diag_msg msg;
  if (payload_len < sizeof(msg)) return false;
  std::memcpy(&msg, payload, sizeof(msg));  // payloads are only 4-byte aligned
  out->family = msg.idiag_family;
  out->state = msg.idiag_state;
  out->timer = msg.idiag_timer;
  out->has_tcp_info = false;
  out->last_data_recv_ms = 0;
  out->data_segs_in = 0;
  const size_t attrs_at = NLMSG_ALIGN(sizeof(msg));
  if (payload_len > attrs_at) ReadAttributes(payload + attrs_at, payload_len - attrs_at, out);
  out->sport = ntohs(msg.id.idiag_sport);
  out->cookie = uint64_t(msg.id.idiag_cookie[0]) | (uint64_t(msg.id.idiag_cookie[1]) << 32);
  out->rqueue = msg.idiag_rqueue;
  out->wqueue = msg.idiag_wqueue;
  if (msg.idiag_family == AF_INET) {
    static const uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    std::memcpy(out->peer, kMappedPrefix, sizeof(kMappedPrefix));
    std::memcpy(out->peer + 12, &msg.id.idiag_dst[0], 4);
    std::memcpy(out->local, kMappedPrefix, sizeof(kMappedPrefix));
    std::memcpy(out->local + 12, &msg.id.idiag_src[0], 4);
  } else if (msg.idiag_family == AF_INET6) {
    std::memcpy(out->peer, msg.id.idiag_dst, 16);
    std::memcpy(out->local, msg.id.idiag_src, 16);
  } else {
    return false;
  }
  return true;
}

}  // namespace

ChunkResult ParseDiagChunk(const uint8_t* data, size_t len, uint32_t seq, uint32_t port_id, RecordSink& sink) {
  ChunkResult result;
  size_t offset = 0;
  while (len - offset >= sizeof(nlmsghdr)) {
    nlmsghdr hdr;
    std::memcpy(&hdr, data + offset, sizeof(hdr));
    if (hdr.nlmsg_len < sizeof(hdr) || hdr.nlmsg_len > len - offset) {
      result.status = ChunkStatus::kError;
      result.error = EPROTO;
      return result;
    }
    const uint8_t* payload = data + offset + NLMSG_HDRLEN;
    const size_t payload_len = hdr.nlmsg_len - NLMSG_HDRLEN;
    const size_t step = NLMSG_ALIGN(hdr.nlmsg_len);
    offset = step >= len - offset ? len : offset + step;

    if (hdr.nlmsg_seq != seq || (port_id != 0 && hdr.nlmsg_pid != port_id)) continue;

    if (hdr.nlmsg_type == NLMSG_DONE || hdr.nlmsg_type == NLMSG_ERROR) {
      int status = 0;
      if (!ReadStatus(payload, payload_len, &status)) {
        result.status = ChunkStatus::kError;
        result.error = EPROTO;
        return result;
      }
      if (status < 0) {
        result.status = ChunkStatus::kError;
        result.error = status == INT_MIN ? EPROTO : -status;
        return result;
      }
      if (hdr.nlmsg_type == NLMSG_DONE) {
        result.status = ChunkStatus::kDone;
        return result;
      }
      continue;  // an ACK (error 0): not the end of a dump
    }
    if (hdr.nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;

    DiagRecord record;
    if (!ReadRecord(payload, payload_len, &record)) {
      result.status = ChunkStatus::kError;
      result.error = EPROTO;
      return result;
    }
    sink.Add(record);
  }
  return result;
}

}  // namespace sockmon
