/* A minimal LD_PRELOAD clock shim for redis-server (libfaketime 0.9.10
 * recurses with Debian's jemalloc build and never starts it). Offsets
 * CLOCK_REALTIME, gettimeofday and time() by the signed number of ms in the
 * file $PULSE_SKEW_FILE, re-read every 20 ms (monotonic clocks untouched, as an
 * NTP step leaves them). No malloc: open/read/close only. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long offset_ms = 0;
static long long read_at_ns = -1;

static long long mono_ns(void) {
  struct timespec ts;
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void refresh(void) {
  long long m = mono_ns();
  if (read_at_ns >= 0 && m - read_at_ns < 20000000LL) return;
  read_at_ns = m;
  const char *path = getenv("PULSE_SKEW_FILE");
  if (!path) return;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return;
  char buf[64];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  offset_ms = strtoll(buf, NULL, 10);
}

static void shift(struct timespec *ts) {
  long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + offset_ms * 1000000LL;
  ts->tv_sec = ns / 1000000000LL;
  ts->tv_nsec = ns % 1000000000LL;
}

int clock_gettime(clockid_t clk, struct timespec *ts) {
  int r = syscall(SYS_clock_gettime, clk, ts);
  if (r == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE)) {
    refresh();
    shift(ts);
  }
  return r;
}

int gettimeofday(struct timeval *tv, void *tz) {
  struct timespec ts;
  (void)tz;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
  if (tv) {
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
  }
  return 0;
}

time_t time(time_t *t) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (t) *t = ts.tv_sec;
  return ts.tv_sec;
}
