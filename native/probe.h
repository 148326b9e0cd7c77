#pragma once
#include <napi.h>

namespace sockmesh {
// Free functions: pins, fd kinds, feature probes, and the kernel's constants.
void InitFunctions(Napi::Env env, Napi::Object exports);
}
