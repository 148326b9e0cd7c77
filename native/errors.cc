#include "errors.h"

#include <bpf/libbpf.h>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sockmesh {

static thread_local LibbpfLogCapture* g_capture = nullptr;
static bool g_debug = getenv("SOCKMESH_LIBBPF_DEBUG") != nullptr;

int LibbpfPrint(int level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG && !g_debug) return 0;
  if (g_debug) {
    va_list c;
    va_copy(c, args);
    vfprintf(stderr, fmt, c);
    va_end(c);
  }
  if (g_capture) {
    va_list c;
    va_copy(c, args);
    char* s = nullptr;
    int n = vasprintf(&s, fmt, c);
    va_end(c);
    if (n >= 0) {
      g_capture->buf_.append(s, static_cast<size_t>(n));
      free(s);
    }
  }
  return 0;
}

static int PrintTrampoline(enum libbpf_print_level level, const char* fmt, va_list args) {
  return LibbpfPrint(level, fmt, args);
}

void InstallLibbpfPrint() { libbpf_set_print(PrintTrampoline); }

LibbpfLogCapture::LibbpfLogCapture() : prev_(g_capture) { g_capture = this; }
LibbpfLogCapture::~LibbpfLogCapture() { g_capture = prev_; }
std::string LibbpfLogCapture::Text() const { return buf_; }

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& op, const std::string& log) {
  if (err < 0) err = -err;
  const char* name = strerrorname_np(err);
  std::string msg = op + ": " + strerror(err) + " (" + (name ? name : "E?") + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  e.Set("op", Napi::String::New(env, op));
  if (!log.empty()) e.Set("libbpfLog", Napi::String::New(env, log));
  return e;
}

void ThrowType(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) ThrowType(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowType(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int64Value();
}

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBuffer()) ThrowType(info.Env(), std::string(what) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

bool ArgIsNullish(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() <= i || info[i].IsNull() || info[i].IsUndefined();
}

}  // namespace sockmesh
