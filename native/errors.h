// Errors thrown to JS carry errno, its name, what was being done (op) and, when
// libbpf had something to say, its log. TypeScript turns them into typed
// classes (src/bpf/errors.ts); no policy here.
#pragma once
#include <napi.h>
#include <string>

namespace sockmesh {

// Routes libbpf's print callback into a per-thread buffer while a capture is
// alive, so each error carries exactly the messages its own call produced.
class LibbpfLogCapture {
 public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  std::string Text() const;
 private:
  LibbpfLogCapture* prev_;
  std::string buf_;
  friend int LibbpfPrint(int level, const char* fmt, va_list args);
};

void InstallLibbpfPrint();

// err is a positive errno. log may be empty.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& op,
                       const std::string& log = "");

[[noreturn]] inline void ThrowErrno(Napi::Env env, int err, const std::string& op,
                                    const std::string& log = "") {
  throw ErrnoError(env, err, op, log);
}

[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg);

// Argument readers: TS validates first; these only guard against misuse.
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what);
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* what);
Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* what);
bool ArgIsNullish(const Napi::CallbackInfo& info, size_t i);

}  // namespace sockmesh
