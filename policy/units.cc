// Unit parsers for policy files. Hand-written: the grammars are tiny and
// the error messages matter more than generality.
#include "policy/units.h"

#include <cmath>
#include <cstdio>

namespace tierfs {

namespace {

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// Reads digits at *pos into *value; false on none. A number past 64 bits
// reads as UINT64_MAX, which every caller's range check then calls too
// long or too large (not "expected a number", which it is).
bool ReadNumber(std::string_view text, size_t* pos, uint64_t* value) {
  size_t start = *pos;
  uint64_t result = 0;
  while (*pos < text.size() && IsDigit(text[*pos])) {
    uint64_t digit = static_cast<uint64_t>(text[*pos] - '0');
    result = result > (UINT64_MAX - digit) / 10 ? UINT64_MAX : result * 10 + digit;
    ++*pos;
  }
  *value = result;
  return *pos > start;
}

bool ReadFixedDigits(std::string_view text, size_t* pos, size_t count, unsigned* value) {
  if (*pos + count > text.size()) return false;
  unsigned result = 0;
  for (size_t i = 0; i < count; ++i) {
    char c = text[*pos + i];
    if (!IsDigit(c)) return false;
    result = result * 10 + static_cast<unsigned>(c - '0');
  }
  *pos += count;
  *value = result;
  return true;
}

bool Expect(std::string_view text, size_t* pos, char c) {
  if (*pos >= text.size() || text[*pos] != c) return false;
  ++*pos;
  return true;
}

}  // namespace

bool ParseDuration(std::string_view text, int64_t* ns, std::string* why) {
  static constexpr struct {
    char unit;
    int64_t seconds;
  } kUnits[] = {{'w', 7 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
  if (text.empty()) {
    *why = "empty duration (write e.g. \"90d\", \"1h30m\")";
    return false;
  }
  size_t pos = 0;
  size_t next_unit = 0;  // units must come largest first
  int64_t total = 0;
  while (pos < text.size()) {
    uint64_t count = 0;
    if (!ReadNumber(text, &pos, &count)) {
      *why = "bad duration \"" + std::string(text) + "\": expected a number at \"" +
             std::string(text.substr(pos)) + "\" (write e.g. \"90d\", \"1h30m\")";
      return false;
    }
    if (pos == text.size()) {
      *why = "bad duration \"" + std::string(text) + "\": missing unit (w, d, h, m or s)";
      return false;
    }
    size_t unit = next_unit;
    while (unit < std::size(kUnits) && kUnits[unit].unit != text[pos]) ++unit;
    if (unit == std::size(kUnits)) {
      *why = "bad duration \"" + std::string(text) + "\": unknown or out-of-order unit \"" +
             std::string(1, text[pos]) + "\" (use w, d, h, m, s, largest first)";
      return false;
    }
    ++pos;
    next_unit = unit + 1;
    int64_t limit = INT64_MAX / kNsPerSecond / kUnits[unit].seconds;
    if (count > static_cast<uint64_t>(limit) ||
        total > INT64_MAX - static_cast<int64_t>(count) * kUnits[unit].seconds * kNsPerSecond) {
      *why = "duration \"" + std::string(text) + "\" is too long";
      return false;
    }
    total += static_cast<int64_t>(count) * kUnits[unit].seconds * kNsPerSecond;
  }
  *ns = total;
  return true;
}

bool ParseSize(std::string_view text, uint64_t* bytes, std::string* why) {
  static constexpr struct {
    std::string_view suffix;
    double multiplier;
  } kUnits[] = {
      {"", 1},
      {"B", 1},
      {"k", 1024.0},
      {"K", 1024.0},
      {"KiB", 1024.0},
      {"KB", 1e3},
      {"kB", 1e3},
      {"M", 1048576.0},
      {"MiB", 1048576.0},
      {"MB", 1e6},
      {"G", 1073741824.0},
      {"GiB", 1073741824.0},
      {"GB", 1e9},
      {"T", 1099511627776.0},
      {"TiB", 1099511627776.0},
      {"TB", 1e12},
  };
  size_t pos = 0;
  uint64_t whole = 0;
  if (!ReadNumber(text, &pos, &whole)) {
    *why = "bad size \"" + std::string(text) + "\": expected a number (write e.g. \"10GiB\")";
    return false;
  }
  double value = static_cast<double>(whole);
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    double scale = 0.1;
    size_t start = pos;
    while (pos < text.size() && IsDigit(text[pos])) {
      value += scale * (text[pos] - '0');
      scale /= 10;
      ++pos;
    }
    if (pos == start) {
      *why = "bad size \"" + std::string(text) + "\": digits expected after \".\"";
      return false;
    }
  }
  std::string_view suffix = text.substr(pos);
  if (!suffix.empty() && suffix.front() == ' ') suffix.remove_prefix(1);
  for (const auto& unit : kUnits) {
    if (unit.suffix != suffix) continue;
    double result = std::floor(value * unit.multiplier);
    if (result >= 18446744073709551615.0) {
      *why = "size \"" + std::string(text) + "\" is too large";
      return false;
    }
    *bytes = static_cast<uint64_t>(result);
    return true;
  }
  *why = "bad size \"" + std::string(text) + "\": unknown unit \"" + std::string(suffix) +
         "\" (use B, k, KiB, KB, M, MiB, MB, G, GiB, GB, T, TiB, TB)";
  return false;
}

bool ParseFraction(std::string_view text, double* fraction, std::string* why) {
  const bool percent = !text.empty() && text.back() == '%';
  const std::string_view number = percent ? text.substr(0, text.size() - 1) : text;
  size_t pos = 0;
  uint64_t whole = 0;
  bool ok = ReadNumber(number, &pos, &whole) && whole <= 1000;
  double value = static_cast<double>(whole);
  if (ok && pos < number.size() && number[pos] == '.') {
    ++pos;
    double scale = 0.1;
    while (pos < number.size() && IsDigit(number[pos])) {
      value += scale * (number[pos] - '0');
      scale /= 10;
      ++pos;
    }
  }
  if (!ok || pos != number.size()) {
    *why = "bad fraction \"" + std::string(text) + "\" (write e.g. 0.90 or \"90%\")";
    return false;
  }
  if (percent) value /= 100.0;
  if (!(value > 0.0 && value <= 1.0)) {
    *why = "\"" + std::string(text) + "\" must be above 0 and at most 1 (100%)";
    return false;
  }
  *fraction = value;
  return true;
}

int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day) {
  // Howard Hinnant's days_from_civil.
  year -= month <= 2;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const unsigned year_of_era = static_cast<unsigned>(year - era * 400);
  const unsigned day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + static_cast<int64_t>(day_of_era) - 719468;
}

bool IsValidDate(int64_t year, unsigned month, unsigned day) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1) return false;
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  unsigned limit = kDays[month - 1] + (month == 2 && leap ? 1 : 0);
  return day <= limit;
}

bool DateToNs(int64_t seconds, int64_t fraction_ns, std::string_view text, int64_t* ns,
              std::string* why) {
  // Checked before multiplying: 9999-12-31 times 1e9 wraps around int64.
  if (seconds < 0 || (seconds == 0 && fraction_ns == 0)) {
    *why = "date \"" + std::string(text) + "\" is not after 1970-01-01T00:00:00Z";
    return false;
  }
  if (seconds > kMaxDateSeconds ||
      (seconds == kMaxDateSeconds && fraction_ns > INT64_MAX % kNsPerSecond)) {
    *why = "date \"" + std::string(text) + "\" is after " + FormatUtc(INT64_MAX) +
           ", the latest date tierfs can record (use no until to pin indefinitely)";
    return false;
  }
  *ns = seconds * kNsPerSecond + fraction_ns;
  return true;
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
  return a + b;
}

bool ParseRfc3339(std::string_view text, int64_t* ns, std::string* why) {
  *why = "bad date \"" + std::string(text) +
         "\" (write RFC 3339 with an offset, e.g. 2027-01-01T00:00:00Z, or a date 2027-01-01)";
  size_t pos = 0;
  unsigned year = 0, month = 0, day = 0;
  if (!ReadFixedDigits(text, &pos, 4, &year) || !Expect(text, &pos, '-') ||
      !ReadFixedDigits(text, &pos, 2, &month) || !Expect(text, &pos, '-') ||
      !ReadFixedDigits(text, &pos, 2, &day) || !IsValidDate(year, month, day)) {
    return false;
  }
  int64_t seconds = DaysFromCivil(year, month, day) * 86400;
  int64_t fraction_ns = 0;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return false;
    ++pos;
    unsigned hour = 0, minute = 0, second = 0;
    if (!ReadFixedDigits(text, &pos, 2, &hour) || !Expect(text, &pos, ':') ||
        !ReadFixedDigits(text, &pos, 2, &minute) || !Expect(text, &pos, ':') ||
        !ReadFixedDigits(text, &pos, 2, &second) || hour > 23 || minute > 59 || second > 60) {
      return false;
    }
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      int64_t scale = kNsPerSecond / 10;
      size_t start = pos;
      while (pos < text.size() && IsDigit(text[pos])) {
        fraction_ns += scale * (text[pos] - '0');
        scale /= 10;
        ++pos;
      }
      if (pos == start) return false;
    }
    seconds += hour * 3600 + minute * 60 + second;
    if (pos == text.size()) {
      *why = "date \"" + std::string(text) + "\" has no UTC offset (append Z or e.g. +02:00)";
      return false;
    }
    if (text[pos] == 'Z' || text[pos] == 'z') {
      ++pos;
    } else if (text[pos] == '+' || text[pos] == '-') {
      int sign = text[pos] == '+' ? 1 : -1;
      ++pos;
      unsigned offset_hour = 0, offset_minute = 0;
      if (!ReadFixedDigits(text, &pos, 2, &offset_hour) || !Expect(text, &pos, ':') ||
          !ReadFixedDigits(text, &pos, 2, &offset_minute) || offset_hour > 23 ||
          offset_minute > 59) {
        return false;
      }
      seconds -= sign * static_cast<int64_t>(offset_hour * 3600 + offset_minute * 60);
    } else {
      return false;
    }
    if (pos != text.size()) return false;
  }
  return DateToNs(seconds, fraction_ns, text, ns, why);
}

std::string FormatUtc(int64_t ns) {
  // Howard Hinnant's civil_from_days.
  int64_t seconds = ns / kNsPerSecond;
  int64_t days = seconds / 86400, second_of_day = seconds % 86400;
  if (second_of_day < 0) second_of_day += 86400, --days;
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const unsigned day_of_era = static_cast<unsigned>(days - era * 146097);
  const unsigned year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const unsigned day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const unsigned mp = (5 * day_of_year + 2) / 153;
  const unsigned day = day_of_year - (153 * mp + 2) / 5 + 1;
  const unsigned month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = static_cast<int64_t>(year_of_era) + era * 400 + (month <= 2);
  char buffer[48];
  std::snprintf(buffer, sizeof(buffer), "%04lld-%02u-%02uT%02d:%02d:%02dZ",
                static_cast<long long>(year), month, day, static_cast<int>(second_of_day / 3600),
                static_cast<int>(second_of_day / 60 % 60), static_cast<int>(second_of_day % 60));
  return buffer;
}

std::string FormatDuration(int64_t ns) {
  static constexpr struct {
    const char* unit;
    int64_t seconds;
  } kUnits[] = {{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}};  // "90d" reads better than "12w6d"
  int64_t seconds = ns / kNsPerSecond;
  if (seconds <= 0) return "0s";
  std::string out;
  for (const auto& unit : kUnits) {
    if (seconds >= unit.seconds) {
      out += std::to_string(seconds / unit.seconds) + unit.unit;
      seconds %= unit.seconds;
    }
  }
  return out;
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), unit == 0 ? "%.0f %s" : "%.1f %s", value, kUnits[unit]);
  return buffer;
}

}  // namespace tierfs
