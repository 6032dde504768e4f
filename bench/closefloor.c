// closefloor: the least a close-event listener can cost, the benchmark's reference ("floor"). It does what
// sockmon's close watcher does and nothing else: a NETLINK_SOCK_DIAG socket in the TCP destroy groups with
// the same classic BPF program attached (given as hex, from src/close_filter.ts), NETLINK_NO_ENOBUFS,
// drained with recvmmsg after each wake-up, then a pause, at nice -10. Counts messages only.
//
//   closefloor FILTER_HEX RECEIVE_BUFFER_BYTES PAUSE_MS
//
// Prints "ready" once bound; on SIGTERM or SIGINT prints "events=N drops=N wakeups=N" and exits.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define SLOT 4096

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: closefloor FILTER_HEX RECEIVE_BUFFER_BYTES PAUSE_MS\n"); return 2; }
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) return 1;
  size_t hex_len = strlen(argv[1]);
  if (hex_len == 0 || hex_len % 16 != 0) { fprintf(stderr, "closefloor: bad filter\n"); return 2; }
  struct sock_filter *code = malloc(hex_len / 2);
  uint8_t *bytes = (uint8_t *)code;
  for (size_t i = 0; i < hex_len / 2; i++) {
    int hi = hex_digit(argv[1][2 * i]), lo = hex_digit(argv[1][2 * i + 1]);
    if (hi < 0 || lo < 0) { fprintf(stderr, "closefloor: bad filter\n"); return 2; }
    bytes[i] = (uint8_t)(hi << 4 | lo);
  }
  int buffer = atoi(argv[2]), pause_ms = atoi(argv[3]);

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), one = 1;
  if (fd < 0) { perror("socket"); return 1; }
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);
  struct sock_fprog program = {(unsigned short)(hex_len / 16), code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) < 0) { perror("SO_ATTACH_FILTER"); return 1; }
  struct sockaddr_nl local = {.nl_family = AF_NETLINK, .nl_groups = (1u << (SKNLGRP_INET_TCP_DESTROY - 1)) | (1u << (SKNLGRP_INET6_TCP_DESTROY - 1))};
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) { perror("bind"); return 1; }
  setpriority(PRIO_PROCESS, 0, -10);  // as sockmon's watcher thread: draining under full CPUs
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  printf("ready\n");
  fflush(stdout);

  static uint8_t buf[BATCH * SLOT];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  unsigned long events = 0, wakeups = 0;
  struct pollfd pfd = {fd, POLLIN, 0};
  while (!stop) {
    if (poll(&pfd, 1, -1) <= 0) continue;  // EINTR on SIGTERM
    wakeups++;
    for (;;) {
      for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){buf + i * SLOT, SLOT};
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
      if (n <= 0) break;
      events += (unsigned long)n;
      if (n < BATCH) break;
    }
    struct timespec pause = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
  }
  uint32_t meminfo[SK_MEMINFO_VARS] = {0};
  socklen_t size = sizeof meminfo;
  getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, &size);
  printf("events=%lu drops=%u wakeups=%lu\n", events, meminfo[SK_MEMINFO_DROPS], wakeups);
  fflush(stdout);
  return 0;
}
