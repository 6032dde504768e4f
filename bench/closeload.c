// closeload: TCP connections that end at once, for the close-path benchmark. Run it only inside the
// benchmark's private network namespace (bench/close-path.ts does). Every connection is accepted by this
// process and ended by the client with an RST (SO_LINGER 0), so no TIME-WAIT piles up: each one is two full
// sockets destroyed, two destroy events (the server end's on LISTEN_ADDR:PORT, the client end's on an
// ephemeral port).
//
//   closeload churn COUNT LISTEN_ADDR PORT SRC_FIRST NSRC
//       connect, accept, reset and close COUNT connections one after another as fast as it can
//   closeload burst COUNT LISTEN_ADDR PORT SRC_FIRST NSRC SECONDS
//       make COUNT connections and hold them (2 descriptors each: keep COUNT under ~9000), print "ready",
//       wait for a line on stdin, then end them evenly over SECONDS (in 10 ms steps)
//
// Sources are SRC_FIRST + i % NSRC with an ephemeral port. Prints "done n=N errors=N first=T last=T
// cpu=S" (CLOCK_MONOTONIC seconds of the first and last close; the process's own user+system seconds).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "closeload: %s: %s\n", what, strerror(errno));
  exit(1);
}

static long errors;
static void failed(const char *what) {
  if (++errors <= 5) fprintf(stderr, "closeload: %s: %s\n", what, strerror(errno));
  if (errors >= 200) { fprintf(stderr, "closeload: too many errors\n"); exit(1); }
}

static int lfd;
static struct sockaddr_in target;
static uint32_t src_first;
static long nsrc;

static int connect_one(long i, int *client, int *server) {
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  if (c < 0) die("socket");
  // The port is picked at connect() for the whole 4-tuple: 64k per destination, not per source address.
  setsockopt(c, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  struct sockaddr_in local = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(src_first + (uint32_t)(i % nsrc))};
  if (bind(c, (struct sockaddr *)&local, sizeof local) < 0) { failed("bind"); close(c); return -1; }
  if (connect(c, (struct sockaddr *)&target, sizeof target) < 0) { failed("connect"); close(c); return -1; }
  int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (s < 0) { failed("accept"); close(c); return -1; }
  *client = c;
  *server = s;
  return 0;
}

static void reset_and_close(int client, int server) {
  struct linger off = {1, 0};
  setsockopt(client, SOL_SOCKET, SO_LINGER, &off, sizeof off);
  close(client);  // RST: no TIME-WAIT on either side
  close(server);
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
  int burst = argc == 8 && strcmp(argv[1], "burst") == 0;
  if (!burst && !(argc == 7 && strcmp(argv[1], "churn") == 0)) {
    fprintf(stderr, "usage: closeload churn COUNT LISTEN_ADDR PORT SRC_FIRST NSRC | burst COUNT LISTEN_ADDR PORT SRC_FIRST NSRC SECONDS\n");
    return 2;
  }
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);  // go with the driver
  if (getppid() != parent) return 1;
  long count = atol(argv[2]);
  int port = atoi(argv[4]);
  struct in_addr src;
  nsrc = atol(argv[6]);
  double seconds = burst ? atof(argv[7]) : 0;
  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)port);
  if (count < 1 || port < 1 || port > 65535 || nsrc < 1 || inet_pton(AF_INET, argv[3], &target.sin_addr) != 1 ||
      inet_pton(AF_INET, argv[5], &src) != 1 || (burst && seconds <= 0)) {
    fprintf(stderr, "closeload: bad arguments\n");
    return 2;
  }
  src_first = ntohl(src.s_addr);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (burst && (rlim_t)(2 * count + 16) > rl.rlim_cur) { fprintf(stderr, "closeload: too many held connections\n"); return 2; }
  }

  lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&target, sizeof target) < 0 || listen(lfd, 4096) < 0) die("listener");

  long done = 0;
  double first = 0, last = 0;
  if (!burst) {
    first = now();
    for (long i = 0; i < count; i++) {
      int c, s;
      if (connect_one(i, &c, &s) < 0) continue;
      reset_and_close(c, s);
      done++;
    }
    last = now();
  } else {
    int *pairs = malloc(sizeof(int) * 2 * (size_t)count);
    if (!pairs) die("malloc");
    long made = 0;
    for (long i = 0; i < count; i++) {
      if (connect_one(i, &pairs[2 * made], &pairs[2 * made + 1]) == 0) made++;
    }
    printf("ready made=%ld\n", made);
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 1;
    // End them evenly: by step k (10 ms apart), made * k / steps of them are closed.
    long steps = (long)(seconds * 100);
    if (steps < 1) steps = 1;
    first = now();
    for (long k = 1; k <= steps; k++) {
      long until = made * k / steps;
      for (; done < until; done++) reset_and_close(pairs[2 * done], pairs[2 * done + 1]);
      double wake = first + k / 100.0;
      struct timespec ts = {(time_t)wake, (long)((wake - (time_t)wake) * 1e9)};
      if (k < steps) clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    last = now();
  }
  printf("done n=%ld errors=%ld first=%.6f last=%.6f cpu=%.3f\n", done, errors, first, last, cpu_seconds());
  fflush(stdout);
  close(lfd);
  return 0;
}
