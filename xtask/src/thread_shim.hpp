// Written by `cargo xtask wheel` (eryx): <thread> for a libc++ without
// threads (the guest's). The guest has one thread: `std::thread` declares
// what code that can also run on one thread compiles against
// (`hardware_concurrency()` is 1), and starting one fails as a failed
// `pthread_create` does (`std::system_error`, or a trap where C++ has no
// exceptions). `std::this_thread` works: `yield` returns, `sleep_for` sleeps.
#pragma once
#include_next <thread>
#if defined(_LIBCPP_HAS_NO_THREADS) && !defined(ERYX_SINGLE_THREAD)
#define ERYX_SINGLE_THREAD
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <ostream>
#include <system_error>
#include <time.h>

_LIBCPP_BEGIN_NAMESPACE_STD

class thread {
 public:
  class id {
    unsigned long long v_ = 0;
    explicit id(unsigned long long v) : v_(v) {}
    friend class thread;
    friend id eryx_this_thread_id() noexcept;

   public:
    id() noexcept = default;
    friend bool operator==(id a, id b) noexcept { return a.v_ == b.v_; }
    friend bool operator!=(id a, id b) noexcept { return a.v_ != b.v_; }
    friend bool operator<(id a, id b) noexcept { return a.v_ < b.v_; }
    friend bool operator<=(id a, id b) noexcept { return a.v_ <= b.v_; }
    friend bool operator>(id a, id b) noexcept { return a.v_ > b.v_; }
    friend bool operator>=(id a, id b) noexcept { return a.v_ >= b.v_; }
    template <class C, class T>
    friend basic_ostream<C, T>& operator<<(basic_ostream<C, T>& os, id i) {
      return os << i.v_;
    }
    size_t hash() const noexcept { return static_cast<size_t>(v_); }
  };
  typedef int native_handle_type;

  thread() noexcept = default;
  template <class F, class... Args>
  explicit thread(F&&, Args&&...) {
#if __cpp_exceptions
    throw system_error(make_error_code(errc::resource_unavailable_try_again),
                       "thread constructor failed: the guest has one thread");
#else
    __builtin_trap();
#endif
  }
  thread(const thread&) = delete;
  thread& operator=(const thread&) = delete;
  thread(thread&&) noexcept = default;
  thread& operator=(thread&&) noexcept = default;
  ~thread() = default;

  bool joinable() const noexcept { return false; }
  void join() {
#if __cpp_exceptions
    throw system_error(make_error_code(errc::invalid_argument), "thread::join");
#else
    __builtin_trap();
#endif
  }
  void detach() { join(); }
  id get_id() const noexcept { return id(); }
  native_handle_type native_handle() { return 0; }
  void swap(thread&) noexcept {}
  static unsigned hardware_concurrency() noexcept { return 1; }
};

inline void swap(thread& a, thread& b) noexcept { a.swap(b); }

inline thread::id eryx_this_thread_id() noexcept { return thread::id(1); }

template <>
struct hash<thread::id> {
  size_t operator()(thread::id i) const noexcept { return i.hash(); }
};

namespace this_thread {
inline thread::id get_id() noexcept { return eryx_this_thread_id(); }
inline void yield() noexcept {}
template <class Rep, class Period>
void sleep_for(const chrono::duration<Rep, Period>& d) {
  if (d <= d.zero()) return;
  auto ns = chrono::duration_cast<chrono::nanoseconds>(d).count();
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}
template <class Clock, class Duration>
void sleep_until(const chrono::time_point<Clock, Duration>& t) {
  auto now = Clock::now();
  if (t > now) sleep_for(t - now);
}
}  // namespace this_thread

_LIBCPP_END_NAMESPACE_STD

#endif
