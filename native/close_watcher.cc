#include "close_watcher.h"

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

namespace sockmon {

namespace {

// recvmmsg batch: slots of 4 KiB hold one destroy message each (inet_diag_msg and tcp_info: ~400 bytes).
constexpr size_t kBatch = 64;
constexpr size_t kSlot = 4096;
constexpr int kNice = -10;

// The bucket of `value`: the first bound at or above it, or the one past the last bound.
inline size_t BucketOf(const std::vector<uint32_t>& bounds, uint32_t value) {
  return std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin();
}

}  // namespace

CloseWatcher::CloseWatcher(PeerMatcher matcher, int receive_buffer_bytes, std::vector<sock_filter> filter,
                           LifeBounds life)
    : matcher_(std::move(matcher)), life_(std::move(life)) {
  if (life_.segments.size() >= kMaxLifeBuckets || life_.idle_ms.size() >= kMaxLifeBuckets)
    throw SysError{EINVAL, "CloseWatcher"};
  std::sort(life_.segments.begin(), life_.segments.end());
  std::sort(life_.idle_ms.begin(), life_.idle_ms.end());
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd_ < 0) throw SysError{errno, "socket"};
  // The buffer holds what arrives while the thread pauses (kPace); SO_RCVBUFFORCE passes rmem_max where it
  // is permitted.
  if (receive_buffer_bytes > 0 &&
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer_bytes, sizeof(receive_buffer_bytes)) < 0) {
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof(receive_buffer_bytes));
  }
  // No ENOBUFS: the kernel's drop count says how many were lost, and without the flag a full buffer also
  // marks the socket congested, which drops every event until the queue is empty again.
  const int one = 1;
  setsockopt(fd_, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
  // The filter goes on before bind(): no unfiltered event is ever queued.
  if (!filter.empty()) {
    sock_fprog program{static_cast<unsigned short>(filter.size()), filter.data()};
    if (filter.size() > BPF_MAXINSNS || setsockopt(fd_, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) < 0) {
      SysError error{filter.size() > BPF_MAXINSNS ? EINVAL : errno, "setsockopt(SO_ATTACH_FILTER)"};
      close(fd_);
      throw error;
    }
  }
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  local.nl_groups = (1u << (SKNLGRP_INET_TCP_DESTROY - 1)) | (1u << (SKNLGRP_INET6_TCP_DESTROY - 1));
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0 || wake_fd_ < 0) {
    SysError error{errno, wake_fd_ < 0 ? "eventfd" : "bind"};
    close(fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    throw error;
  }
  try {
    thread_ = std::thread(&CloseWatcher::Run, this);
  } catch (const std::system_error& error) {
    close(fd_);
    close(wake_fd_);
    throw SysError{error.code().value(), "pthread_create"};
  }
}

CloseWatcher::~CloseWatcher() { Stop(); }

void CloseWatcher::Stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) { /* the thread also stops on its next event */
  }
  thread_.join();
  std::lock_guard<std::mutex> lock(drops_mutex_);
  ReadDrops();  // the last count, kept once the socket is gone
  close(fd_);
  fd_ = -1;
  close(wake_fd_);
}

uint64_t CloseWatcher::drops() const {
  std::lock_guard<std::mutex> lock(drops_mutex_);
  return ReadDrops();
}

uint64_t CloseWatcher::ReadDrops() const {
  if (fd_ < 0) return drops_;
  uint32_t meminfo[SK_MEMINFO_VARS] = {};
  socklen_t size = sizeof(meminfo);
  if (getsockopt(fd_, SOL_SOCKET, SO_MEMINFO, meminfo, &size) == 0 && size > SK_MEMINFO_DROPS * sizeof(uint32_t)) {
    drops_ += uint32_t(meminfo[SK_MEMINFO_DROPS] - drops_seen_);
    drops_seen_ = meminfo[SK_MEMINFO_DROPS];
  }
  return drops_;
}

CloseWatcher::Closed CloseWatcher::Take() {
  Closed taken;
  std::lock_guard<std::mutex> lock(mutex_);
  taken.swap(closed_);
  return taken;
}

void CloseWatcher::Add(const DiagRecord& record) {
  ++events_;
  if (!matcher_.Matches(record)) return;
  CountKey key{};
  std::memcpy(key.peer, record.peer, 16);
  key.port = record.sport;
  auto found = closed_.find(key);
  if (found == closed_.end()) {
    if (closed_.size() >= kMaxPendingKeys) std::memset(key.peer, 0, 16);  // the overflow key of this port
    found = closed_.try_emplace(key).first;
  }
  Closes& closes = found->second;
  ++closes.closed;
  if (!record.has_tcp_info) return;
  ++closes.segments[BucketOf(life_.segments, record.data_segs_in)];
  closes.segments_sum += record.data_segs_in;
  ++closes.idle[BucketOf(life_.idle_ms, record.last_data_recv_ms)];
  closes.idle_sum_ms += record.last_data_recv_ms;
}

void CloseWatcher::Run() {
  // When closing processes saturate every CPU, a thread of normal priority can wait hundreds of
  // milliseconds to run, longer than any buffer lasts. A higher priority (only for this thread, which
  // sleeps almost always) keeps it draining; it needs CAP_SYS_NICE or RLIMIT_NICE (systemd LimitNICE=),
  // and without them the thread runs at the default priority.
  setpriority(PRIO_PROCESS, pid_t(syscall(SYS_gettid)), kNice);
  std::vector<uint8_t> buffer(kBatch * kSlot);
  pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      error_ = errno;
      return;
    }
    if (fds[1].revents) return;
    // A queue already a quarter full at wake-up means the pace is too slow for the buffer: skip the pause.
    uint32_t meminfo[SK_MEMINFO_VARS] = {};
    socklen_t size = sizeof(meminfo);
    const bool filling = getsockopt(fd_, SOL_SOCKET, SO_MEMINFO, meminfo, &size) == 0 &&
                         meminfo[SK_MEMINFO_RMEM_ALLOC] > meminfo[SK_MEMINFO_RCVBUF] / 4;
    if (!Drain(buffer)) return;
    if (!filling && !Pause(kPace)) return;
  }
}

bool CloseWatcher::Drain(std::vector<uint8_t>& buffer) {
  mmsghdr messages[kBatch];
  iovec vectors[kBatch];
  for (;;) {
    for (size_t i = 0; i < kBatch; ++i) {
      vectors[i] = {buffer.data() + i * kSlot, kSlot};
      messages[i] = {};
      messages[i].msg_hdr.msg_iov = &vectors[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    const int received = recvmmsg(fd_, messages, kBatch, MSG_DONTWAIT, nullptr);
    if (received < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == EINTR || errno == ENOBUFS) continue;  // ENOBUFS: only without NETLINK_NO_ENOBUFS (old kernels)
      error_ = errno;
      return false;
    }
    // Multicast messages carry seq 0 and port id 0: accept those only. One message per datagram. The
    // lock is taken once per batch, not per event: Take() waits at most one batch.
    std::lock_guard<std::mutex> lock(mutex_);
    for (int i = 0; i < received; ++i) ParseDiagChunk(buffer.data() + i * kSlot, messages[i].msg_len, 0, 0, *this);
    if (size_t(received) < kBatch) return true;  // the queue is empty
  }
}

bool CloseWatcher::Pause(std::chrono::milliseconds pause) {
  pollfd wake = {wake_fd_, POLLIN, 0};
  for (;;) {
    const int ready = poll(&wake, 1, int(pause.count()));
    if (ready < 0 && errno == EINTR) continue;  // a signal: pausing less is harmless
    if (ready < 0) error_ = errno;
    return ready == 0;
  }
}

}  // namespace sockmon
