// A fresh Store in a temporary directory for each test, removed afterwards.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "meta/store.h"

namespace tierfs {

class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tierfs-store-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Closes and opens the environment again, as a remount would.
  void Reopen() {
    store_.reset();
    Status st = Store::Open(dir_, &store_);
    ASSERT_TRUE(st.ok()) << st.message();
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

}  // namespace tierfs
