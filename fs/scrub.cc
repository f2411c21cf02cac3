#include "fs/scrub.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <unordered_set>
#include <utility>
#include <vector>

#include "fs/context.h"
#include "fs/verify_object.h"

namespace tierfs {

namespace {

// The pass's audit record: one line an auditor can read and a script parse.
AuditRecord PassRecord(const ScrubPass& p, const std::string& tier) {
  AuditRecord rec;
  rec.action = "scrub";
  rec.rule = "scrub";
  rec.path = "/";
  rec.from = tier;
  rec.bytes = p.bytes;
  rec.result = p.corrupt > 0 ? "corrupt" : p.errors > 0 ? "errors" : "ok";
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.3f", p.seconds());
  rec.detail = "files=" + std::to_string(p.files) + " bytes=" + std::to_string(p.bytes) +
               " corrupt=" + std::to_string(p.corrupt) + " errors=" + std::to_string(p.errors) +
               " skipped=" + std::to_string(p.skipped) + " seconds=" + seconds;
  return rec;
}

}  // namespace

Scrubber::Scrubber(Context& c, std::function<ScrubLimits()> limits)
    : c_(c), limits_fn_(std::move(limits)) {}

Scrubber::~Scrubber() {
  Stop();
}

void Scrubber::Start() {
  if (thread_.joinable()) return;
  {
    MutexLock lock(&mu_);
    stop_ = false;
    started_ = true;
    base_ns_ = NowNs();
    limits_ = limits_fn_();
  }
  thread_ = std::thread([this] { Loop(); });
}

void Scrubber::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    started_ = false;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void Scrubber::RequestPass() {
  {
    MutexLock lock(&mu_);
    requested_ = true;
  }
  wake_.SignalAll();
}

Scrubber::Info Scrubber::GetInfo() {
  MutexLock lock(&mu_);
  Info i;
  i.started = started_;
  i.interval_ns = limits_.interval_ns;
  i.bytes_per_sec = limits_.bytes_per_sec;
  if (i.started && running_ns_ == 0 && (requested_ || limits_.interval_ns > 0))
    i.next_ns = requested_ ? NowNs() : base_ns_ + limits_.interval_ns;
  i.running_ns = running_ns_;
  i.has_last = has_last_;
  i.last = last_;
  return i;
}

bool Scrubber::stopping() {
  MutexLock lock(&mu_);
  return stop_;
}

void Scrubber::Loop() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (stop_) return;
      // Polled once a second: a reload's new interval is seen that soon
      // without the policy runner knowing about the scrub.
      if (!requested_) wake_.WaitFor(&mu_, std::chrono::seconds(1));
      if (stop_) return;
      limits_ = limits_fn_();
      const bool due = limits_.interval_ns > 0 && NowNs() >= base_ns_ + limits_.interval_ns;
      if (!requested_ && !due) continue;
      requested_ = false;
      running_ns_ = NowNs();
    }
    ScrubPass p;
    const bool finished = RunPass(&p);
    MutexLock lock(&mu_);
    running_ns_ = 0;
    if (!finished) {
      spdlog::info("scrub: pass stopped unfinished (unmount)");
      return;
    }
    base_ns_ = p.ended_ns;
    has_last_ = true;
    last_ = p;
  }
}

bool Scrubber::Pace(uint64_t bytes) {
  using Clock = std::chrono::steady_clock;
  // How long `n` bytes take at `rate`.
  auto share = [](uint64_t n, uint64_t rate) {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::nanoseconds(rate ? uint64_t(double(n) * 1e9 / double(rate)) : 0));
  };
  MutexLock lock(&mu_);
  for (;;) {
    if (stop_) return false;
    limits_ = limits_fn_();
    // A reload changed the bandwidth: the last read's share is timed anew,
    // so a pass slowed down to a crawl is not waited out after a raise.
    if (limits_.bytes_per_sec != paced_rate_) {
      paced_rate_ = limits_.bytes_per_sec;
      next_read_ = last_read_ + share(last_bytes_, paced_rate_);
    }
    const auto now = Clock::now();
    if (now >= next_read_) break;
    // Bounded: a reload is noticed within a second.
    wake_.WaitFor(&mu_, std::min<Clock::duration>(next_read_ - now, std::chrono::seconds(1)));
  }
  // This read's share of time: the next one starts no earlier than its end.
  last_read_ = std::max(next_read_, Clock::now());
  last_bytes_ = bytes;
  next_read_ = last_read_ + share(bytes, paced_rate_);
  // Counted as the read starts: a slow pass shows its progress.
  c_.metrics().CountScrubBytes(bytes);
  return true;
}

bool Scrubber::RunPass(ScrubPass* p) {
  p->started_ns = NowNs();
  spdlog::info("scrub: pass started");
  // The files first, then the reads: no LMDB read transaction stays open
  // across a throttled pass. A file with several names is checked once.
  std::vector<std::pair<uint64_t, std::string>> files;
  std::unordered_set<uint64_t> seen;
  Status st = c_.store().WalkTree([&](const Store::TreeEntry& e) {
    const Inode& n = *e.inode;
    if (n.is_reg() && n.nlink > 0 && n.tier == TierId::kHdd && seen.insert(n.ino).second)
      files.emplace_back(n.ino, e.path);
    return Status::Ok();
  });
  if (!st.ok()) {
    spdlog::error("scrub: listing the HDD tier's files: {}", st.message());
    ++p->errors;
  }
  const CheckPace pace = [this](uint64_t bytes) { return Pace(bytes); };
  for (const auto& [ino, path] : files) {
    if (stopping()) return false;
    Inode n;
    // Gone, moved or rewritten since the listing: the next pass sees it.
    if (!c_.store().GetInode(ino, &n).ok() || !n.is_reg() || n.nlink == 0 || n.tier != TierId::kHdd)
      continue;
    if (n.corrupt()) {
      ++p->files, ++p->corrupt;
      continue;
    }
    const ObjectCheck r = CheckObject(c_, n, path, "scrub", pace);
    p->bytes += r.bytes_read;
    switch (r.result) {
      case ObjectCheck::Result::kOk:
        ++p->files;
        break;
      case ObjectCheck::Result::kCorrupt:
        ++p->files, ++p->corrupt;
        c_.metrics().CountScrubCorrupt();
        break;
      case ObjectCheck::Result::kNoSums:
      case ObjectCheck::Result::kBusy:
        ++p->skipped;
        break;
      case ObjectCheck::Result::kError:
        // The first only: a missing disk would log one line per file.
        if (p->errors++ == 0) spdlog::error("scrub: {}: {}", path, r.detail);
        c_.metrics().CountScrubError();
        break;
      case ObjectCheck::Result::kStopped:
        return false;
    }
  }
  p->ended_ns = NowNs();
  const AuditRecord rec = PassRecord(*p, c_.tier(TierId::kHdd).name());
  c_.Audit({rec});
  c_.metrics().CountScrubPass(p->ended_ns);
  if (p->corrupt > 0 || p->errors > 0)
    spdlog::warn("scrub: pass finished: {}", rec.detail);
  else
    spdlog::info("scrub: pass finished: {}", rec.detail);
  return true;
}

}  // namespace tierfs
