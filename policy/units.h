// Units of the policy file: durations, sizes, fractions and RFC 3339 dates.
// Internal to policy/. Each parser returns false and a reason an admin can
// act on ("unknown unit \"x\" (use w, d, h, m, s)") instead of throwing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tierfs {

constexpr int64_t kNsPerSecond = 1'000'000'000;

// "90d", "1h30m", "2w", "45s": one or more <digits><unit>, units w d h m s,
// largest first, each at most once.
bool ParseDuration(std::string_view text, int64_t* ns, std::string* why);
// "10GiB", "512MB", "4k", "1.5TiB", "0": binary units (k K KiB M MiB ...)
// are powers of 1024, KB MB GB TB powers of 1000; a bare number is bytes.
bool ParseSize(std::string_view text, uint64_t* bytes, std::string* why);
// "0.9" or "90%" -> 0.90: above 0 and at most 1 (100%). The one parser of
// fractions: the policy file's watermarks and the command line's.
bool ParseFraction(std::string_view text, double* fraction, std::string* why);
// "2027-01-01T00:00:00Z", "2027-01-01 12:00:00.5+02:00", or a date alone
// ("2027-01-01", midnight UTC). A time without an offset is refused: the
// daemon's zone is not the admin's.
bool ParseRfc3339(std::string_view text, int64_t* ns, std::string* why);
// The pin dates a policy accepts: after 1970-01-01T00:00:00Z (0 means "no
// end" to a hold, and earlier instants need negative times) up to the last
// instant int64 nanoseconds since the epoch can hold, 2262-04-11T23:47:16Z.
constexpr int64_t kMaxDateSeconds = INT64_MAX / kNsPerSecond;
// seconds + fraction_ns (0..999999999) as nanoseconds since the epoch, or
// false and a reason naming `text` when the instant is outside that range.
bool DateToNs(int64_t seconds, int64_t fraction_ns, std::string_view text, int64_t* ns,
              std::string* why);
// a + b for a duration b >= 0, saturating at INT64_MAX instead of wrapping.
int64_t SaturatingAdd(int64_t a, int64_t b);
// Days since 1970-01-01 of a proleptic Gregorian date (month 1..12).
int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day);
// Whether year-month-day names a real day.
bool IsValidDate(int64_t year, unsigned month, unsigned day);
// "2027-01-01T00:00:00Z".
std::string FormatUtc(int64_t ns);
// "1h30m" style rendering for messages and plans.
std::string FormatDuration(int64_t ns);
// "1.5 GiB" style rendering.
std::string FormatBytes(uint64_t bytes);

}  // namespace tierfs
