// Written by `cargo xtask wheel` (eryx): <fstream> for a libc++ without
// filesystem support (the guest's: `_LIBCPP_HAS_NO_FILESYSTEM`), whose own
// header then declares nothing. File streams over C stdio, which WASI's libc
// has: open/close/is_open, buffered reads and writes, seeking, the open
// modes of the standard's table. Not here: `std::filesystem::path`
// overloads, move and swap, `native_handle`.
#pragma once
#include_next <fstream>
#if defined(_LIBCPP_HAS_NO_FILESYSTEM) && !defined(ERYX_STDIO_FSTREAM)
#define ERYX_STDIO_FSTREAM
#include <cstdio>
#include <istream>
#include <ostream>
#include <string>
#include <sys/types.h>

_LIBCPP_BEGIN_NAMESPACE_STD

template <class _CharT, class _Traits>
class basic_filebuf : public basic_streambuf<_CharT, _Traits> {
 public:
  typedef _CharT char_type;
  typedef _Traits traits_type;
  typedef typename traits_type::int_type int_type;
  typedef typename traits_type::pos_type pos_type;
  typedef typename traits_type::off_type off_type;

  basic_filebuf() = default;
  basic_filebuf(const basic_filebuf&) = delete;
  basic_filebuf& operator=(const basic_filebuf&) = delete;
  ~basic_filebuf() override { close(); }

  bool is_open() const { return file_ != nullptr; }

  basic_filebuf* open(const char* name, ios_base::openmode mode) {
    if (file_ != nullptr) return nullptr;
    const char* how = mode_string(mode);
    if (how == nullptr) return nullptr;
    file_ = std::fopen(name, how);
    if (file_ == nullptr) return nullptr;
    mode_ = mode;
    if ((mode & ios_base::ate) && std::fseek(file_, 0, SEEK_END) != 0) {
      std::fclose(file_);
      file_ = nullptr;
      return nullptr;
    }
    return this;
  }
  basic_filebuf* open(const string& name, ios_base::openmode mode) {
    return open(name.c_str(), mode);
  }

  basic_filebuf* close() {
    if (file_ == nullptr) return nullptr;
    bool ok = sync() == 0;
    if (std::fclose(file_) != 0) ok = false;
    file_ = nullptr;
    this->setg(nullptr, nullptr, nullptr);
    this->setp(nullptr, nullptr);
    return ok ? this : nullptr;
  }

 protected:
  int_type underflow() override {
    if (file_ == nullptr || !(mode_ & ios_base::in)) return traits_type::eof();
    if (this->pbase() != nullptr) {  // from writing to reading
      if (flush_put() != 0) return traits_type::eof();
      this->setp(nullptr, nullptr);
    }
    if (this->gptr() != nullptr && this->gptr() < this->egptr())
      return traits_type::to_int_type(*this->gptr());
    size_t n = std::fread(in_, sizeof(char_type), kBuffer, file_);
    if (n == 0) {
      this->setg(nullptr, nullptr, nullptr);
      return traits_type::eof();
    }
    this->setg(in_, in_, in_ + n);
    return traits_type::to_int_type(*this->gptr());
  }

  int_type overflow(int_type c) override {
    if (file_ == nullptr || !(mode_ & (ios_base::out | ios_base::app)))
      return traits_type::eof();
    if (this->eback() != nullptr && drop_get() != 0) return traits_type::eof();
    if (this->pbase() != nullptr && flush_put() != 0) return traits_type::eof();
    this->setp(out_, out_ + kBuffer);
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *this->pptr() = traits_type::to_char_type(c);
      this->pbump(1);
    }
    return traits_type::not_eof(c);
  }

  int sync() override {
    if (file_ == nullptr) return 0;
    if (this->pbase() != nullptr && flush_put() != 0) return -1;
    if (this->eback() != nullptr && drop_get() != 0) return -1;
    return std::fflush(file_) == 0 ? 0 : -1;
  }

  pos_type seekoff(off_type off, ios_base::seekdir dir, ios_base::openmode) override {
    if (file_ == nullptr || sync() != 0) return pos_type(off_type(-1));
    int whence = dir == ios_base::beg ? SEEK_SET : dir == ios_base::cur ? SEEK_CUR : SEEK_END;
    if (::fseeko(file_, static_cast<off_t>(off) * static_cast<off_t>(sizeof(char_type)), whence) != 0)
      return pos_type(off_type(-1));
    off_t at = ::ftello(file_);
    if (at < 0) return pos_type(off_type(-1));
    return pos_type(off_type(at / static_cast<off_t>(sizeof(char_type))));
  }

  pos_type seekpos(pos_type pos, ios_base::openmode which) override {
    return seekoff(off_type(pos), ios_base::beg, which);
  }

 private:
  static const size_t kBuffer = 4096;

  // Writes what the put area holds and empties it.
  int flush_put() {
    size_t n = static_cast<size_t>(this->pptr() - this->pbase());
    if (n != 0 && std::fwrite(this->pbase(), sizeof(char_type), n, file_) != n) return -1;
    this->setp(out_, out_ + kBuffer);
    return 0;
  }

  // Gives back what was read ahead and not consumed (the file position
  // moves back to the stream's), and empties the get area.
  int drop_get() {
    off_t unread = static_cast<off_t>(this->egptr() - this->gptr());
    this->setg(nullptr, nullptr, nullptr);
    if (unread != 0 && ::fseeko(file_, -unread * static_cast<off_t>(sizeof(char_type)), SEEK_CUR) != 0)
      return -1;
    return 0;
  }

  // fopen's mode for an openmode, per the standard's table; null if none.
  static const char* mode_string(ios_base::openmode mode) {
    bool binary = (mode & ios_base::binary) != 0;
    ios_base::openmode m = mode & ~(ios_base::ate | ios_base::binary);
    const ios_base::openmode in = ios_base::in, out = ios_base::out, trunc = ios_base::trunc,
                             app = ios_base::app;
    if (m == out || m == (out | trunc)) return binary ? "wb" : "w";
    if (m == (out | app) || m == app) return binary ? "ab" : "a";
    if (m == in) return binary ? "rb" : "r";
    if (m == (in | out)) return binary ? "r+b" : "r+";
    if (m == (in | out | trunc)) return binary ? "w+b" : "w+";
    if (m == (in | out | app) || m == (in | app)) return binary ? "a+b" : "a+";
    return nullptr;
  }

  FILE* file_ = nullptr;
  ios_base::openmode mode_ = ios_base::openmode();
  char_type in_[kBuffer];
  char_type out_[kBuffer];
};

#define ERYX_FILE_STREAM(name, base, default_mode, always)                                \
  template <class _CharT, class _Traits>                                             \
  class name : public base<_CharT, _Traits> {                                        \
    basic_filebuf<_CharT, _Traits> buf_;                                             \
                                                                                     \
   public:                                                                           \
    name() : base<_CharT, _Traits>(&buf_) {}                                         \
    explicit name(const char* s, ios_base::openmode m = default_mode)                \
        : base<_CharT, _Traits>(&buf_) {                                             \
      open(s, m);                                                                    \
    }                                                                                \
    explicit name(const string& s, ios_base::openmode m = default_mode)              \
        : base<_CharT, _Traits>(&buf_) {                                             \
      open(s, m);                                                                    \
    }                                                                                \
    name(const name&) = delete;                                                      \
    name& operator=(const name&) = delete;                                           \
    basic_filebuf<_CharT, _Traits>* rdbuf() const {                                  \
      return const_cast<basic_filebuf<_CharT, _Traits>*>(&buf_);                     \
    }                                                                                \
    bool is_open() const { return buf_.is_open(); }                                  \
    void open(const char* s, ios_base::openmode m = default_mode) {                  \
      if (buf_.open(s, m | (always)))                                                \
        this->clear();                                                               \
      else                                                                           \
        this->setstate(ios_base::failbit);                                           \
    }                                                                                \
    void open(const string& s, ios_base::openmode m = default_mode) {                \
      open(s.c_str(), m);                                                            \
    }                                                                                \
    void close() {                                                                   \
      if (buf_.close() == nullptr) this->setstate(ios_base::failbit);                \
    }                                                                                \
  };

ERYX_FILE_STREAM(basic_ifstream, basic_istream, ios_base::in, ios_base::in)
ERYX_FILE_STREAM(basic_ofstream, basic_ostream, ios_base::out, ios_base::out)
ERYX_FILE_STREAM(basic_fstream, basic_iostream, ios_base::in | ios_base::out,
                 ios_base::openmode())
#undef ERYX_FILE_STREAM

_LIBCPP_END_NAMESPACE_STD

#endif
