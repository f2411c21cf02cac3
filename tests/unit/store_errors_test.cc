// LMDB errors inside the namespace's own transactions are errors, never
// answers: a directory whose entries cannot be listed is not "empty" (an
// rmdir or a replacing rename would otherwise drop a tree of entries).
#include <lmdb.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "meta/txn.h"

namespace tierfs {
namespace {

TEST(StoreErrorsTest, ACursorErrorInTheEmptinessCheckIsAnErrorNotEmpty) {
  char tmpl[] = "/tmp/tierfs-store-errors.XXXXXX";
  ASSERT_NE(nullptr, mkdtemp(tmpl));
  MDB_env* env = nullptr;
  ASSERT_EQ(0, mdb_env_create(&env));
  ASSERT_EQ(0, mdb_env_open(env, tmpl, 0, 0600));
  MDB_txn* txn = nullptr;
  ASSERT_EQ(0, mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn));
  Store::Dbs dbs;
  dbs.dentries = 4242;  // no such database: every cursor on it fails (EINVAL)
  bool empty = true;
  Status st = dbs.DirIsEmpty(txn, 7, &empty);
  EXPECT_FALSE(st.ok()) << "a failed listing was read as an empty directory";
  EXPECT_NE(std::string::npos, st.message().find("directory 7")) << st.message();
  mdb_txn_abort(txn);
  mdb_env_close(env);
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace tierfs
