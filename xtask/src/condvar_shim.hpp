// Written by `cargo xtask wheel` (eryx): <condition_variable> for a libc++
// without threads (the guest's). With one thread nothing else can notify:
// `notify_*` do nothing, a timed wait sleeps its time and times out (or
// returns its predicate), and an untimed wait whose predicate is false,
// which natively would hang forever, ends the call with a trap that says
// so (the host goes on).
#pragma once
#include_next <condition_variable>
#if defined(_LIBCPP_HAS_NO_THREADS) && !defined(ERYX_SINGLE_THREAD_CONDVAR)
#define ERYX_SINGLE_THREAD_CONDVAR
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

_LIBCPP_BEGIN_NAMESPACE_STD

enum class cv_status { no_timeout, timeout };

[[noreturn]] inline void eryx_wait_forever() {
  std::fputs("condition_variable::wait: nothing can notify (the guest has one thread)\n", stderr);
  __builtin_trap();
}

#define ERYX_CONDVAR_BODY(Lock)                                                         \
  void notify_one() noexcept {}                                                         \
  void notify_all() noexcept {}                                                         \
  template <class L = Lock>                                                             \
  void wait(L&) {                                                                       \
    eryx_wait_forever();                                                                \
  }                                                                                     \
  template <class L, class P>                                                           \
  void wait(L&, P pred) {                                                               \
    if (!pred()) eryx_wait_forever();                                                   \
  }                                                                                     \
  template <class L, class R, class Pe>                                                 \
  cv_status wait_for(L&, const chrono::duration<R, Pe>& d) {                            \
    this_thread::sleep_for(d);                                                          \
    return cv_status::timeout;                                                          \
  }                                                                                     \
  template <class L, class R, class Pe, class P>                                        \
  bool wait_for(L&, const chrono::duration<R, Pe>& d, P pred) {                         \
    if (pred()) return true;                                                            \
    this_thread::sleep_for(d);                                                          \
    return pred();                                                                      \
  }                                                                                     \
  template <class L, class C, class D>                                                  \
  cv_status wait_until(L&, const chrono::time_point<C, D>& t) {                         \
    this_thread::sleep_until(t);                                                        \
    return cv_status::timeout;                                                          \
  }                                                                                     \
  template <class L, class C, class D, class P>                                         \
  bool wait_until(L&, const chrono::time_point<C, D>& t, P pred) {                      \
    if (pred()) return true;                                                            \
    this_thread::sleep_until(t);                                                        \
    return pred();                                                                      \
  }

class condition_variable {
 public:
  condition_variable() = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;
  ERYX_CONDVAR_BODY(unique_lock<mutex>)
};

class condition_variable_any {
 public:
  condition_variable_any() = default;
  condition_variable_any(const condition_variable_any&) = delete;
  condition_variable_any& operator=(const condition_variable_any&) = delete;
  ERYX_CONDVAR_BODY(unique_lock<mutex>)
};
#undef ERYX_CONDVAR_BODY

inline void notify_all_at_thread_exit(condition_variable&, unique_lock<mutex>) {}

_LIBCPP_END_NAMESPACE_STD

#endif
