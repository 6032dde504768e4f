// CloseWatcher for JavaScript: the close-event thread of close_watcher.h, read with totals().
#pragma once

#include <napi.h>

namespace sockmon {

Napi::Function DefineCloseWatcher(Napi::Env env);

}  // namespace sockmon
