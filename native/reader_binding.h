// DiagReader for JavaScript: one persistent netlink socket per address family; dump() runs on the libuv
// thread pool and resolves to typed arrays, never one JS object per socket.
#pragma once

#include <napi.h>

namespace sockmon {

Napi::Function DefineDiagReader(Napi::Env env);

}  // namespace sockmon
