// Unit tests of meta/keys.h: the LMDB key layouts are on-disk format, and
// the namespace's range scans rely on their ordering.
#include "meta/keys.h"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "meta/txn.h"

namespace tierfs {
namespace {

MDB_val ValOf(const std::string& s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

bool KeyLess(const std::string& a, const std::string& b) {  // LMDB's default order
  const int c = std::memcmp(a.data(), b.data(), std::min(a.size(), b.size()));
  return c != 0 ? c < 0 : a.size() < b.size();
}

std::vector<uint64_t> SampleInodes() {
  std::vector<uint64_t> v = {0,          1,
                             2,          255,
                             256,        257,
                             65535,      65536,
                             1ull << 32, (1ull << 32) - 1,
                             1ull << 56, UINT64_MAX - 1,
                             UINT64_MAX};
  std::mt19937_64 rng(11);
  for (int i = 0; i < 200; ++i) v.push_back(rng() >> (rng() % 64));
  return v;
}

TEST(StoreKeysTest, InodeKeysAreEightBytesBigEndianAndRoundTrip) {
  // The layout existing states were written with.
  EXPECT_EQ(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8), InoKey(0x0102030405060708));
  EXPECT_EQ(std::string("\0\0\0\0\0\0\0\x01", 8), InoKey(1));
  for (uint64_t ino : SampleInodes()) {
    const std::string k = InoKey(ino);
    ASSERT_EQ(kInoKeyBytes, k.size());
    EXPECT_EQ(ino, InoFromKey(ValOf(k))) << ino;
    // Dentry and xattr keys lead with the same inode.
    EXPECT_EQ(ino, InoFromKey(ValOf(DentryKey(ino, "name")))) << ino;
    EXPECT_EQ(ino, InoFromKey(ValOf(XattrKey(ino, "user.x")))) << ino;
  }
}

TEST(StoreKeysTest, InodeKeyOrderIsNumericOrder) {
  std::vector<uint64_t> inos = SampleInodes();
  std::vector<std::string> keys;
  for (uint64_t ino : inos) keys.push_back(InoKey(ino));
  std::sort(inos.begin(), inos.end());
  std::sort(keys.begin(), keys.end(), KeyLess);
  for (size_t i = 0; i < inos.size(); ++i)
    EXPECT_EQ(inos[i], InoFromKey(ValOf(keys[i]))) << "position " << i;
}

TEST(StoreKeysTest, NamesRoundTripWithAnyBytes) {
  for (const std::string& name :
       {std::string("a"), std::string(255, 'x'), std::string("with\0nul", 8),
        std::string("\xff\xfe"), std::string("")}) {
    EXPECT_EQ(name, NameFromKey(ValOf(DentryKey(42, name))));
    EXPECT_EQ(name, NameFromKey(ValOf(XattrKey(42, name))));
  }
  EXPECT_EQ(DentryPrefix(42) + "n", DentryKey(42, "n"));
  EXPECT_EQ(XattrPrefix(42) + "n", XattrKey(42, "n"));
}

// In a real LMDB database, one cursor range from DentryPrefix(dir) yields
// exactly that directory's entries, in name order, whatever the neighbours'
// numbers and names (255/256 differ in the last byte, 256/65536 not only).
TEST(StoreKeysTest, ADentryPrefixCoversExactlyOneDirectorysEntries) {
  char tmpl[] = "/tmp/tierfs-store-keys.XXXXXX";
  ASSERT_NE(nullptr, mkdtemp(tmpl));
  MDB_env* env = nullptr;
  ASSERT_EQ(0, mdb_env_create(&env));
  ASSERT_EQ(0, mdb_env_open(env, tmpl, 0, 0600));
  MDB_txn* t = nullptr;
  ASSERT_EQ(0, mdb_txn_begin(env, nullptr, 0, &t));
  MDB_dbi db;
  ASSERT_EQ(0, mdb_dbi_open(t, nullptr, 0, &db));
  const std::vector<uint64_t> dirs = {1, 255, 256, 257, 65536, 1ull << 40};
  const std::vector<std::string> names = {std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8), "b",
                                          "a", std::string("\0", 1), std::string(200, 'z')};
  for (uint64_t dir : dirs)
    for (const std::string& name : names)
      ASSERT_TRUE(PutRaw(t, db, DentryKey(dir, name), std::to_string(dir), "put").ok());

  std::vector<std::string> want = names;
  std::sort(want.begin(), want.end(), KeyLess);
  for (uint64_t dir : dirs) {
    std::vector<std::string> got;
    Status st = ForEachKey(t, db, DentryPrefix(dir), [&](const MDB_val& k, const MDB_val& v) {
      EXPECT_EQ(dir, InoFromKey(k));
      EXPECT_EQ(std::to_string(dir), std::string(static_cast<const char*>(v.mv_data), v.mv_size));
      got.push_back(NameFromKey(k));
      return Status::Ok();
    });
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(want, got) << "directory " << dir;
  }
  // A directory with no entries gets none of its neighbours'.
  size_t stray = 0;
  Status st = ForEachKey(t, db, DentryPrefix(2), [&](const MDB_val&, const MDB_val&) {
    ++stray;
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(0u, stray);
  mdb_txn_abort(t);
  mdb_env_close(env);
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace tierfs
