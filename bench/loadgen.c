// loadgen: builds TCP socket populations on loopback for the sockmon benchmark. Run it only inside the
// benchmark's private network namespace (bench/run.ts does): it binds 203.0.113.x / 198.51.100.x sources.
//
//   loadgen churn MAX_SECONDS JOB...   make each job's connections one after another and close them at once:
//                                      the side that closes first keeps a TIME-WAIT socket (60 s), no descriptor
//   loadgen hold  MAX_SECONDS JOB      make the job's connections and hold both ends ESTABLISHED until SIGTERM,
//                                      MAX_SECONDS or the parent's death (2 descriptors per connection: keep
//                                      COUNT under ~9000)
//
// JOB = LISTEN_ADDR,PORT,DST,SRC_FIRST,NSRC,PORT_FIRST,COUNT,CLOSER
//   LISTEN_ADDR  address this process listens on ("::" = dual-stack [::], accepted sockets are AF_INET6 with
//                v4-mapped peers); jobs of one process with the same LISTEN_ADDR,PORT share the listener
//   DST          IPv4 address the clients connect to (PORT)
//   SRC_FIRST    first client source address; connection i uses SRC_FIRST + i % NSRC and local port
//                PORT_FIRST + i / NSRC, so no two connections share a 4-tuple (the driver keeps ranges disjoint)
//   CLOSER       server: the server closes first (server-side TIME-WAIT, peer = client address)
//                client: the client closes first (client-side TIME-WAIT on its own port)
// Prints "done made=N errors=N seconds=S" (churn) or "ready made=N errors=N seconds=S" (hold) on stdout.
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
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_JOBS 16
#define MAX_ERRORS 200

struct job {
  char listen_addr[64];
  int port;
  struct in_addr dst;
  uint32_t src_first; /* host order */
  long nsrc;
  long port_first;
  long count;
  int client_closes;
  int lfd;
  long made;
};

static struct job jobs[MAX_JOBS];
static int njobs;
static long errors;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void set_timeout(int fd, int seconds) {
  struct timeval tv = {seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int open_listener(const char *addr, int port) {
  for (int i = 0; i < njobs; i++) {
    if (jobs[i].lfd >= 0 && jobs[i].port == port && strcmp(jobs[i].listen_addr, addr) == 0) return jobs[i].lfd;
  }
  int v6 = strchr(addr, ':') != NULL;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1, zero = 0;
  // SO_REUSEPORT: the churn, hold and dual-stack listeners share port 80 on different addresses.
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  int rc;
  if (v6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    if (inet_pton(AF_INET6, addr, &sa.sin6_addr) != 1) { fprintf(stderr, "loadgen: bad address %s\n", addr); exit(2); }
    rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
  } else {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) { fprintf(stderr, "loadgen: bad address %s\n", addr); exit(2); }
    rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
  }
  if (rc < 0) die("bind listener");
  if (listen(fd, 4096) < 0) die("listen");
  set_timeout(fd, 5); /* accept() honours SO_RCVTIMEO: a lost connection cannot hang the run */
  return fd;
}

static void parse_job(const char *text) {
  if (njobs == MAX_JOBS) { fprintf(stderr, "loadgen: too many jobs\n"); exit(2); }
  struct job *j = &jobs[njobs];
  char dst[64], src[64], closer[16];
  if (sscanf(text, "%63[^,],%d,%63[^,],%63[^,],%ld,%ld,%ld,%15s", j->listen_addr, &j->port, dst, src, &j->nsrc,
             &j->port_first, &j->count, closer) != 8 ||
      inet_pton(AF_INET, dst, &j->dst) != 1 || j->nsrc < 1 || j->count < 0 || j->port < 1 || j->port > 65535) {
    fprintf(stderr, "loadgen: bad job \"%s\"\n", text);
    exit(2);
  }
  struct in_addr s;
  if (inet_pton(AF_INET, src, &s) != 1) { fprintf(stderr, "loadgen: bad source %s\n", src); exit(2); }
  j->src_first = ntohl(s.s_addr);
  j->client_closes = strcmp(closer, "client") == 0;
  if (!j->client_closes && strcmp(closer, "server") != 0) { fprintf(stderr, "loadgen: bad closer %s\n", closer); exit(2); }
  if (j->port_first < 1024 || j->port_first + (j->count + j->nsrc - 1) / j->nsrc - 1 > 65535) {
    fprintf(stderr, "loadgen: job \"%s\" runs out of ports\n", text);
    exit(2);
  }
  j->lfd = -1;
  j->made = 0;
  njobs++;
}

static void failed(const char *what) {
  if (++errors <= 5) fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  if (errors >= MAX_ERRORS) { fprintf(stderr, "loadgen: too many errors, giving up\n"); exit(1); }
}

/* Connection number i of job j: connects and accepts it; returns 0 with both descriptors, -1 on error. */
static int connect_one(struct job *j, long i, int *client, int *server) {
  struct sockaddr_in local = {.sin_family = AF_INET};
  local.sin_addr.s_addr = htonl(j->src_first + (uint32_t)(i % j->nsrc));
  local.sin_port = htons((uint16_t)(j->port_first + i / j->nsrc));
  struct sockaddr_in remote = {.sin_family = AF_INET, .sin_addr = j->dst, .sin_port = htons(j->port)};
  int one = 1;
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c < 0) die("socket");
  setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  set_timeout(c, 5);
  if (bind(c, (struct sockaddr *)&local, sizeof local) < 0) { failed("bind"); close(c); return -1; }
  if (connect(c, (struct sockaddr *)&remote, sizeof remote) < 0) { failed("connect"); close(c); return -1; }
  int s = accept4(j->lfd, NULL, NULL, SOCK_CLOEXEC);
  if (s < 0) { failed("accept"); close(c); return -1; }
  set_timeout(s, 5);
  *client = c;
  *server = s;
  return 0;
}

/* The job furthest behind its share goes next, so every kind of socket is made across the whole run. */
static struct job *next_job(void) {
  struct job *best = NULL;
  double best_share = 2;
  for (int i = 0; i < njobs; i++) {
    if (jobs[i].made >= jobs[i].count) continue;
    double share = (double)jobs[i].made / (double)jobs[i].count;
    if (share < best_share) best_share = share, best = &jobs[i];
  }
  return best;
}

int main(int argc, char **argv) {
  if (argc < 4 || (strcmp(argv[1], "churn") != 0 && strcmp(argv[1], "hold") != 0)) {
    fprintf(stderr, "usage: loadgen churn|hold MAX_SECONDS JOB...\n");
    return 2;
  }
  /* Go with the benchmark driver if it dies without cleaning up. */
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) return 1;
  int hold = strcmp(argv[1], "hold") == 0;
  double max_seconds = atof(argv[2]);
  if (max_seconds <= 0) { fprintf(stderr, "loadgen: bad MAX_SECONDS\n"); return 2; }
  for (int i = 3; i < argc; i++) parse_job(argv[i]);
  if (hold && njobs != 1) { fprintf(stderr, "loadgen: hold takes one job\n"); return 2; }

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (hold && (rlim_t)(2 * jobs[0].count + 16) > rl.rlim_cur) {
      fprintf(stderr, "loadgen: %ld held connections need %ld descriptors, the limit is %ld\n", jobs[0].count,
              2 * jobs[0].count + 16, (long)rl.rlim_cur);
      return 2;
    }
  }
  for (int i = 0; i < njobs; i++) jobs[i].lfd = open_listener(jobs[i].listen_addr, jobs[i].port);

  double start = now(), deadline = start + max_seconds;
  char byte;
  struct job *j;
  long steps = 0;
  while ((j = next_job()) != NULL) {
    if ((++steps & 1023) == 0 && now() > deadline) {
      fprintf(stderr, "loadgen: deadline of %.0f s reached\n", max_seconds);
      return 1;
    }
    long i = j->made++;
    int c, s;
    if (connect_one(j, i, &c, &s) < 0) continue;
    if (hold) continue; /* both ends stay open */
    int first = j->client_closes ? c : s, second = j->client_closes ? s : c;
    close(first);                                   /* FIN from the closing side */
    if (read(second, &byte, 1) != 0) failed("read"); /* the other side sees it (EOF) */
    close(second);                                  /* and answers with its own FIN: the first side is in TIME-WAIT */
  }
  long made = 0;
  for (int i = 0; i < njobs; i++) made += jobs[i].made;
  printf("%s made=%ld errors=%ld seconds=%.3f\n", hold ? "ready" : "done", made - errors, errors, now() - start);
  fflush(stdout);
  if (!hold) return 0;

  /* Hold until SIGTERM (default action) or the time limit. */
  double left = deadline - now();
  if (left < 1) left = 1;
  alarm((unsigned)left);
  for (;;) pause();
}
