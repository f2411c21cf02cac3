// Status: the result of an operation in meta/, tiering/ and policy/.
//
// An errno value plus a message that names what failed (which file, which
// tier, which rule). Converted to a negative errno only at the FUSE boundary,
// so hot paths never throw. Cheap to return when ok (empty message).
// [[nodiscard]]: an error dropped on the floor is a bug; the rare call whose
// result is deliberately ignored says so with (void) and a comment.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace tierfs {

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(int err, std::string msg) { return Status(err, std::move(msg)); }
  // An errno-style failure with the system's text appended: "open /x: No such file".
  static Status Errno(int err, const std::string& what) {
    return Status(err, what + ": " + std::strerror(err));
  }

  bool ok() const { return err_ == 0; }
  int err() const { return err_; }
  const std::string& message() const { return msg_; }

 private:
  Status(int err, std::string msg) : err_(err), msg_(std::move(msg)) {}
  int err_ = 0;
  std::string msg_;
};

}  // namespace tierfs
