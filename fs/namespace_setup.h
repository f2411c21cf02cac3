// Opening a namespace: its state (LMDB) and its directory on each tier.
//
// A namespace is one tierfs file tree: one state directory plus, on each
// tier, a directory <tier>/ns/<name>/ that holds its objects
// (tiering/tier.h). Several namespaces may share a tier (the capacity tier
// that the nodes of a multi-node job share): each only ever touches objects
// below its own directory, so one cannot overwrite another's archive.
//
// The name is --namespace or, by default, random; it is chosen when the
// state is created and recorded in LMDB (meta key "namespace"), next to a
// random id of the state itself ("state_id"). Each namespace directory holds
// an `owner` file with the id of the state that owns it. A state opens a
// namespace directory only when the directory is new, is owned by that
// state, or (the first mount of a state that an older tierfs made, which
// kept its objects in <tier>/objects/: they are moved under the namespace)
// has no owner. A fresh state refuses a directory that already holds
// objects or belongs to another state, rather than reusing their names.
//
// Also checked: the state belongs to these tiers (their tierfs.id), and
// --ssd and --hdd are two different tiers.
// Errors: EEXIST when a namespace directory belongs to another state or a
// fresh state finds objects there; EINVAL for a bad name, a --namespace
// other than the state's, or tiers the state does not describe; errno of the
// failing call otherwise. Every message names the path.
#pragma once

#include <memory>
#include <string>

#include "meta/store.h"
#include "tiering/io.h"
#include "tiering/tier.h"

namespace tierfs {

struct NamespaceOptions {
  std::string name;  // --namespace: "" for the state's own, or a random one for a new state
  StoreOptions store;
  std::shared_ptr<Io> ssd_io, hdd_io;  // each tier's object calls (null: PosixIo)
};

struct OpenedNamespace {
  std::string name;
  std::unique_ptr<Store> store;
  std::unique_ptr<Tier> ssd;
  std::unique_ptr<Tier> hdd;
};

// Opens (creating on first use) the state in `state_dir` and the namespace's
// directories on the tiers at `ssd_dir` and `hdd_dir`.
Status OpenNamespace(const std::string& state_dir, const std::string& ssd_dir,
                     const std::string& hdd_dir, const NamespaceOptions& options,
                     OpenedNamespace* out);

}  // namespace tierfs
