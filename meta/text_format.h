// How tierfs writes checksums and times as text, in one place: the audit
// journal, the control protocol, generation manifests, object identities
// and exports must spell them alike, since auditors and scripts compare
// them across those files.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tierfs {

// An xxh3-64 (or any 64-bit value) as 16 lowercase hex digits.
std::string Hex64(uint64_t v);
// A time (ns since the epoch) in UTC, RFC 3339 to the second:
// "2026-12-05T23:45:51Z".
std::string UtcSeconds(int64_t ns);
// The same to the nanosecond: "2026-12-05T23:45:51.123456789Z" (the audit
// journal's "time").
std::string UtcNanos(int64_t ns);

// Names are bytes, and JSON strings are UTF-8: where a name that is not
// valid UTF-8 must cross JSON exactly (control requests and replies, export
// manifests), its bytes go as lowercase hex beside it.
std::string HexBytes(std::string_view bytes);
// The bytes of `hex` (either case); false when it is not an even number of
// hex digits.
bool FromHexBytes(std::string_view hex, std::string* bytes);
// Whether nlohmann::json would dump `s` (a strict UTF-8 check: exactly when
// dump would throw type_error 316, it says no).
bool ValidUtf8(const std::string& s);

}  // namespace tierfs
