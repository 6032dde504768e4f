#include "diag_socket.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sockmon {

namespace {

constexpr size_t kRecvBufferSize = 64 * 1024;  // kernel chunks are at most ~32 KiB
constexpr int kMaxRestarts = 3;
constexpr int kRecvTimeoutSeconds = 30;  // a stuck kernel reply fails the dump instead of a worker thread

// A restartable dump failure: the reply was lost in part, the dump must start over.
struct Restart {};

bool IsRestartable(int error) { return error == ENOBUFS || error == ENOMEM; }

}  // namespace

void DiagSocket::Open() {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd_ < 0) throw SysError{errno, "socket"};
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  socklen_t local_len = sizeof(local);
  timeval timeout{kRecvTimeoutSeconds, 0};
  if (bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0 ||
      getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &local_len) < 0 ||
      setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) < 0) {
    SysError error{errno, "bind"};
    Close();
    throw error;
  }
  port_id_ = local.nl_pid;
  if (buffer_.empty()) buffer_.resize(kRecvBufferSize);
}

void DiagSocket::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void DiagSocket::Dump(uint8_t family, const DumpRequest& request, RecordSink& sink, void (*reset)(RecordSink&),
                      DumpStats& stats) {
  for (int attempt = 0;; ++attempt) {
    try {
      if (fd_ < 0) Open();
      DumpFamily(family, request, sink, stats);
      return;
    } catch (const Restart&) {
      // The kernel may still hold the rest of the aborted dump for this socket: start on a fresh one.
      Close();
      if (attempt == kMaxRestarts) throw SysError{ENOBUFS, "recvmsg"};
      ++stats.restarts;
      reset(sink);
    } catch (const SysError&) {
      Close();  // never reuse a socket left mid-dump
      throw;
    }
  }
}

void DiagSocket::DumpFamily(uint8_t family, const DumpRequest& request, RecordSink& sink, DumpStats& stats) {
  struct {
    nlmsghdr header;
    inet_diag_req_v2 body;
  } message{};
  nlattr bytecode_attr{};
  const uint32_t seq = ++seq_;
  const size_t bytecode_len = request.bytecode.size();

  message.header.nlmsg_len = sizeof(message) + (bytecode_len ? NLA_HDRLEN + NLA_ALIGN(bytecode_len) : 0);
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  message.header.nlmsg_seq = seq;
  message.body.sdiag_family = family;
  message.body.sdiag_protocol = IPPROTO_TCP;
  message.body.idiag_states = request.states;
  message.body.idiag_ext = request.tcp_info ? uint8_t(1 << (INET_DIAG_INFO - 1)) : 0;
  message.body.id.idiag_sport = htons(request.sport);

  static const uint8_t kPadding[NLA_ALIGNTO] = {};
  bytecode_attr.nla_len = uint16_t(NLA_HDRLEN + bytecode_len);
  bytecode_attr.nla_type = INET_DIAG_REQ_BYTECODE;
  iovec parts[4] = {
      {&message, sizeof(message)},
      {&bytecode_attr, NLA_HDRLEN},
      {const_cast<uint8_t*>(request.bytecode.data()), bytecode_len},
      {const_cast<uint8_t*>(kPadding), NLA_ALIGN(bytecode_len) - bytecode_len},
  };
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  msghdr out{};
  out.msg_name = &kernel;
  out.msg_namelen = sizeof(kernel);
  out.msg_iov = parts;
  out.msg_iovlen = bytecode_len ? 4 : 1;
  while (sendmsg(fd_, &out, 0) < 0) {
    if (errno != EINTR) throw SysError{errno, "sendmsg"};
  }

  for (;;) {
    iovec in_part{buffer_.data(), buffer_.size()};
    msghdr in{};
    in.msg_iov = &in_part;
    in.msg_iovlen = 1;
    const ssize_t received = recvmsg(fd_, &in, 0);
    if (received < 0) {
      if (errno == EINTR) continue;
      if (IsRestartable(errno)) throw Restart{};
      throw SysError{errno, "recvmsg"};
    }
    if (in.msg_flags & MSG_TRUNC) throw Restart{};
    if (received == 0) throw SysError{EPROTO, "recvmsg"};
    ++stats.recv_calls;
    stats.bytes += uint64_t(received);

    const ChunkResult chunk = ParseDiagChunk(buffer_.data(), size_t(received), seq, port_id_, sink);
    if (chunk.status == ChunkStatus::kDone) return;
    if (chunk.status == ChunkStatus::kError) {
      if (IsRestartable(chunk.error)) throw Restart{};
      throw SysError{chunk.error, "recvmsg"};
    }
  }
}

}  // namespace sockmon
