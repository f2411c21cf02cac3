// Internal to meta/: how every key of the state's LMDB databases is built,
// in one place. This is on-disk format: a state written by one tierfs is
// read by the next, so a change to any layout below (or to a record it
// names) must bump kFormat, which Store::Open checks against the meta key
// kFormatKey and refuses when it differs.
//
// Database   key                              value
// inodes     InoKey(ino)                      Inode (meta/inode.h), byte for byte
// dentries   DentryKey(parent, name)          DentryValue (meta/txn.h)
// symlinks   InoKey(ino)                      the target's bytes
// xattrs     XattrKey(ino, name)              the value's bytes
// orphans    InoKey(ino)                      "" (nlink 0; the kernel may still use it)
// holds      InoKey(ino)                      a hold (meta/store_holds.cc Encode)
// moves      InoKey(ino)                      Store::MoveRecord, byte for byte
// block_sums InoKey(ino)                      u64 whole-file xxh3 then one u64 xxh3 per
//                                             kSumBlockBytes block (meta/block_sums.h);
//                                             valid only while the first equals
//                                             Inode::checksum (a new database: states
//                                             without it are the same format)
// meta       kNextInoKey, kFormatKey, and     a u64 (native order) for these two;
//            the names fs/namespace_setup.cc  the caller's bytes for the others
//            gives Store::PutMeta
//
// Why big-endian: LMDB orders keys by memcmp. An inode number written most
// significant byte first sorts as the number does, so the inode-keyed
// databases list in inode order (ListOrphans, ListMoves, ForEachInode). And
// a dentry or xattr key is the 8-byte inode followed by the name, with no
// separator or terminator: every key starting with InoKey(ino) belongs to
// that one inode, so one directory's entries (or one inode's xattrs) are a
// single contiguous range, read with one cursor seek (ForEachKey) and
// removed together (DelPrefix), in name order.
#pragma once

#include <lmdb.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tierfs {

inline constexpr size_t kInoKeyBytes = 8;

// The meta database's own keys.
inline constexpr char kNextInoKey[] = "next_ino";  // the next inode number to hand out
inline constexpr char kFormatKey[] = "format";     // the layout described above
inline constexpr uint64_t kFormat = 1;             // this tierfs reads and writes

inline std::string InoKey(uint64_t ino) {
  std::string k(kInoKeyBytes, '\0');
  for (int i = kInoKeyBytes - 1; i >= 0; --i, ino >>= 8) k[i] = char(ino & 0xff);
  return k;
}

// The inode number at the start of any inode-led key (a short key reads as
// the number its bytes spell, never past its end).
inline uint64_t InoFromKey(const MDB_val& k) {
  uint64_t ino = 0;
  const auto* p = static_cast<const unsigned char*>(k.mv_data);
  for (size_t i = 0; i < kInoKeyBytes && i < k.mv_size; ++i) ino = (ino << 8) | p[i];
  return ino;
}

// The name after the inode in a dentry or xattr key.
inline std::string NameFromKey(const MDB_val& k) {
  if (k.mv_size < kInoKeyBytes) return "";
  return std::string(static_cast<const char*>(k.mv_data) + kInoKeyBytes, k.mv_size - kInoKeyBytes);
}

inline std::string DentryKey(uint64_t parent, std::string_view name) {
  return InoKey(parent).append(name);
}
// Every entry of directory `parent`, and nothing else.
inline std::string DentryPrefix(uint64_t parent) {
  return InoKey(parent);
}

inline std::string XattrKey(uint64_t ino, std::string_view name) {
  return InoKey(ino).append(name);
}
// Every xattr of inode `ino`, and nothing else.
inline std::string XattrPrefix(uint64_t ino) {
  return InoKey(ino);
}

}  // namespace tierfs
