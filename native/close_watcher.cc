#include "close_watcher.h"

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

namespace sockmon {

CloseWatcher::CloseWatcher(PeerMatcher matcher, int receive_buffer_bytes) : matcher_(std::move(matcher)) {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd_ < 0) throw SysError{errno, "socket"};
  // A larger buffer rides out bursts of closes; SO_RCVBUFFORCE passes rmem_max where it is permitted.
  if (receive_buffer_bytes > 0 &&
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer_bytes, sizeof(receive_buffer_bytes)) < 0) {
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof(receive_buffer_bytes));
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
  if (write(wake_fd_, &one, sizeof(one)) < 0) { /* the thread also stops on its next event */ }
  thread_.join();
  close(fd_);
  close(wake_fd_);
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
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = closed_.find(key);
  if (found != closed_.end()) {
    ++found->second;
    return;
  }
  if (closed_.size() >= kMaxPendingKeys) std::memset(key.peer, 0, 16);  // the overflow key of this port
  ++closed_[key];
}

void CloseWatcher::Run() {
  std::vector<uint8_t> buffer(64 * 1024);
  pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      error_ = errno;
      return;
    }
    if (fds[1].revents) return;
    const ssize_t received = recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (received < 0) {
      // ENOBUFS: the kernel dropped events while our buffer was full. Count it; reading on resynchronises.
      if (errno == ENOBUFS) ++overruns_;
      else if (errno != EAGAIN && errno != EINTR) {
        error_ = errno;
        return;
      }
      continue;
    }
    // Multicast messages carry seq 0 and port id 0: accept those only.
    ParseDiagChunk(buffer.data(), size_t(received), 0, 0, *this);
  }
}

}  // namespace sockmon
