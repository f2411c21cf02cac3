// The version of tierfs and tierctl, defined here once: `tierfs --version`,
// `tierctl --version` and the control socket's `status` reply all print it.
// Bump it with every release tag (vMAJOR.MINOR.PATCH).
#pragma once

namespace tierfs {

inline constexpr char kVersion[] = "0.1.0";

}  // namespace tierfs
