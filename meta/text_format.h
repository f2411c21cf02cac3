// How tierfs writes checksums and times as text, in one place: the audit
// journal, the control protocol, generation manifests, object identities
// and exports must spell them alike, since auditors and scripts compare
// them across those files.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

namespace tierfs {

// An xxh3-64 (or any 64-bit value) as 16 lowercase hex digits.
std::string Hex64(uint64_t v);
// A time (ns since the epoch) in UTC, RFC 3339 to the second:
// "2026-12-05T23:45:51Z".
std::string UtcSeconds(int64_t ns);
// The same to the nanosecond: "2026-12-05T23:45:51.123456789Z" (the audit
// journal's "time").
std::string UtcNanos(int64_t ns);

}  // namespace tierfs
