// Clang's thread-safety annotations (-Wthread-safety), as macros that
// expand to nothing on compilers without the attributes (g++), so the
// normal build is unchanged and `make thread-check` (clang++ -fsyntax-only
// -Wthread-safety -Werror) proves at compile time that every member marked
// GUARDED_BY is only touched with its lock held. Use them with the
// annotated Mutex of meta/mutex.h; a plain std::mutex is not checked.
// Reference: https://clang.llvm.org/docs/ThreadSafetyAnalysis.html
#pragma once

#if defined(__clang__) && defined(__has_attribute)
#if __has_attribute(guarded_by)
#define TIERFS_THREAD_ANNOTATION(x) __attribute__((x))
#endif
#endif
#ifndef TIERFS_THREAD_ANNOTATION
#define TIERFS_THREAD_ANNOTATION(x)  // not checked by this compiler
#endif

// On a class: it is a lock (`x` names the kind in diagnostics, "mutex").
#define CAPABILITY(x) TIERFS_THREAD_ANNOTATION(capability(x))
// On a class: an RAII object that holds a lock for its lifetime.
#define SCOPED_CAPABILITY TIERFS_THREAD_ANNOTATION(scoped_lockable)
// On a member: read or written only with lock `x` held.
#define GUARDED_BY(x) TIERFS_THREAD_ANNOTATION(guarded_by(x))
// On a pointer member: what it points to is guarded by `x`.
#define PT_GUARDED_BY(x) TIERFS_THREAD_ANNOTATION(pt_guarded_by(x))
// On a lock member: lock order relative to other locks.
#define ACQUIRED_BEFORE(...) TIERFS_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) TIERFS_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
// On a function: the caller must hold the lock(s) (exclusively / shared).
#define REQUIRES(...) TIERFS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) TIERFS_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
// On a function: it takes / gives up the lock(s) (no argument: `this`).
#define ACQUIRE(...) TIERFS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) TIERFS_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) TIERFS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) TIERFS_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) TIERFS_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// On a function: the caller must not hold the lock(s) (the function takes them).
#define EXCLUDES(...) TIERFS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// On a function: it checks at run time that the lock is held.
#define ASSERT_CAPABILITY(x) TIERFS_THREAD_ANNOTATION(assert_capability(x))
// On a function: it returns a reference to lock `x`.
#define RETURN_CAPABILITY(x) TIERFS_THREAD_ANNOTATION(lock_returned(x))
// On a function: not analysed (say why where it is used).
#define NO_THREAD_SAFETY_ANALYSIS TIERFS_THREAD_ANNOTATION(no_thread_safety_analysis)
