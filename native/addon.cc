// The N-API surface: DiagReader (one persistent netlink socket; dump() runs on the libuv thread pool and
// resolves to typed arrays, never one JS object per socket). Argument shapes are checked in
// src/native.ts before calls reach here; the checks below only keep bad calls from crashing the process.
#include <napi.h>
#include <uv.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "diag_socket.h"
#include "sd_notify.h"
#include "socket_counts.h"

namespace sockmon {

namespace {

Napi::Error MakeSysError(Napi::Env env, const SysError& error) {
  const char* code = uv_err_name(-error.error);
  Napi::Error result = Napi::Error::New(env, std::string(error.syscall) + " " + code + ": " + std::strerror(error.error));
  result.Set("code", code);
  result.Set("errno", Napi::Number::New(env, -error.error));
  result.Set("syscall", error.syscall);
  return result;
}

void ResetCounts(RecordSink& sink) { static_cast<SocketCounts&>(sink).Clear(); }

class DiagReader : public Napi::ObjectWrap<DiagReader> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DiagReader",
                       {InstanceMethod("dump", &DiagReader::Dump), InstanceMethod("close", &DiagReader::Close)});
  }

  explicit DiagReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DiagReader>(info) {}

  // Runs on a worker thread. One dump at a time per reader: the socket cannot carry two.
  void RunDump(const DumpRequest& request, SocketCounts& counts, DumpStats& stats) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) throw SysError{EBADF, "recvmsg"};
    socket_.Dump(request, counts, ResetCounts, stats);
  }

 private:
  Napi::Value Dump(const Napi::CallbackInfo& info);

  Napi::Value Close(const Napi::CallbackInfo& info) {
    closed_ = true;
    // A dump in flight holds the lock; it fails its next use of the socket, which the destructor closes.
    if (mutex_.try_lock()) {
      socket_.Close();
      mutex_.unlock();
    }
    return info.Env().Undefined();
  }

  std::mutex mutex_;
  std::atomic<bool> closed_{false};
  DiagSocket socket_;
};

class DumpWorker : public Napi::AsyncWorker {
 public:
  DumpWorker(Napi::Env env, DiagReader* reader, Napi::Object reader_object, DumpRequest request)
      : Napi::AsyncWorker(env, "sockmon:dump"),
        deferred_(Napi::Promise::Deferred::New(env)),
        reader_(reader),
        reader_ref_(Napi::Persistent(reader_object)),
        request_(std::move(request)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      reader_->RunDump(request_, counts_, stats_);
    } catch (const SysError& error) {
      error_ = error;
      SetError("dump failed");  // OnError builds the real Error from error_
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    const auto& counts = counts_.counts();
    const size_t n = counts.size();
    auto peers = Napi::Uint8Array::New(env, n * 16);
    auto ports = Napi::Uint16Array::New(env, n);
    auto states = Napi::Uint8Array::New(env, n);
    auto values = Napi::Uint32Array::New(env, n);
    size_t i = 0;
    for (const auto& [key, count] : counts) {
      std::memcpy(peers.Data() + i * 16, key.peer, 16);
      ports[i] = key.port;
      states[i] = key.state;
      values[i] = count;
      ++i;
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("scanned", double(counts_.scanned()));
    result.Set("duplicates", double(counts_.duplicates()));
    result.Set("peers", peers);
    result.Set("ports", ports);
    result.Set("states", states);
    result.Set("counts", values);
    result.Set("recvCalls", double(stats_.recv_calls));
    result.Set("bytes", double(stats_.bytes));
    result.Set("restarts", stats_.restarts);
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error&) override { deferred_.Reject(MakeSysError(Env(), error_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  DiagReader* reader_;
  Napi::ObjectReference reader_ref_;  // keeps the reader (and its socket) alive while the dump runs
  DumpRequest request_;
  SocketCounts counts_;
  DumpStats stats_;
  SysError error_{0, ""};
};

// dump({states: number, sport: number, bytecode: Uint8Array}): Promise<RawDump>
Napi::Value DiagReader::Dump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "dump() takes a request object");
  Napi::Object options = info[0].As<Napi::Object>();
  Napi::Value bytecode = options.Get("bytecode");
  if (!options.Get("states").IsNumber() || !options.Get("sport").IsNumber() || !bytecode.IsTypedArray() ||
      bytecode.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "dump() request needs states, sport (numbers) and bytecode (Uint8Array)");
  }
  DumpRequest request;
  request.states = options.Get("states").As<Napi::Number>().Uint32Value();
  request.sport = uint16_t(options.Get("sport").As<Napi::Number>().Uint32Value());
  auto program = bytecode.As<Napi::Uint8Array>();
  request.bytecode.assign(program.Data(), program.Data() + program.ElementLength());

  auto* worker = new DumpWorker(env, this, info.This().As<Napi::Object>(), std::move(request));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// sdNotify(path: string, state: string): throws a system error if the datagram cannot be sent.
Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString()) throw Napi::TypeError::New(env, "sdNotify(path, state) takes two strings");
  const int error = SdNotify(info[0].As<Napi::String>(), info[1].As<Napi::String>());
  if (error != 0) throw MakeSysError(env, SysError{error, "sendto"});
  return env.Undefined();
}

}  // namespace

}  // namespace sockmon

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  exports.Set("DiagReader", sockmon::DiagReader::Define(env));
  exports.Set("sdNotify", Napi::Function::New(env, sockmon::Notify, "sdNotify"));
  return exports;
}

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitAddon)
