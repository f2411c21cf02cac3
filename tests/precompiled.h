// The headers nearly every test file includes, GoogleTest first, compiled
// once per build directory (the Makefile's $(BUILD)/tests/precompiled.h.gch)
// instead of once per file: CI compiles the tests three times (plain, ASan,
// TSan) within its 30 minutes. A build speedup only: every test still
// includes what it uses, and builds the same without it (make PCH=0).
// C++ headers only: C system headers define different things depending on
// what came before them (<linux/fs.h>, <sys/mount.h>). No include guard:
// the compiler includes it once, with -include.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
