#include "napi_errors.h"

#include <uv.h>

#include <cstring>
#include <string>

namespace sockmon {

Napi::Error MakeSysError(Napi::Env env, const SysError& error) {
  const char* code = uv_err_name(-error.error);
  Napi::Error result =
      Napi::Error::New(env, std::string(error.syscall) + " " + code + ": " + std::strerror(error.error));
  result.Set("code", code);
  result.Set("errno", Napi::Number::New(env, -error.error));
  result.Set("syscall", error.syscall);
  return result;
}

}  // namespace sockmon
