#include "meta/text_format.h"

#include <cinttypes>
#include <cstdio>
#include <ctime>

namespace tierfs {

std::string Hex64(uint64_t v) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016" PRIx64, v);
  return hex;
}

std::string UtcSeconds(int64_t ns) {
  const time_t secs = time_t(ns / 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string UtcNanos(int64_t ns) {
  const time_t secs = time_t(ns / 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09" PRId64 "Z", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ns % 1000000000);
  return buf;
}

}  // namespace tierfs
