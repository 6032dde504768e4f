// The addon's N-API surface: DiagReader (socket dumps), CloseWatcher (close events) and sdNotify. Argument
// shapes are checked in src/native.ts before calls reach here; the checks in the bindings only keep bad
// calls from crashing the process.
#include <napi.h>

#include "close_watcher_binding.h"
#include "napi_errors.h"
#include "reader_binding.h"
#include "sd_notify.h"

namespace sockmon {

namespace {

// sdNotify(path: string, state: string): throws a system error if the datagram cannot be sent.
Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString())
    throw Napi::TypeError::New(env, "sdNotify(path, state) takes two strings");
  const int error = SdNotify(info[0].As<Napi::String>(), info[1].As<Napi::String>());
  if (error != 0) throw MakeSysError(env, SysError{error, "sendto"});
  return env.Undefined();
}

}  // namespace

}  // namespace sockmon

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  exports.Set("DiagReader", sockmon::DefineDiagReader(env));
  exports.Set("CloseWatcher", sockmon::DefineCloseWatcher(env));
  exports.Set("sdNotify", Napi::Function::New(env, sockmon::Notify, "sdNotify"));
  return exports;
}

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitAddon)
