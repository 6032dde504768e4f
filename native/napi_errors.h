// Node-style errors (code, errno, syscall) for failed system calls, shared by the bindings.
#pragma once

#include <napi.h>

#include "diag_socket.h"

namespace sockmon {

Napi::Error MakeSysError(Napi::Env env, const SysError& error);

}  // namespace sockmon
