#include "reader_binding.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include "diag_socket.h"
#include "listen_table.h"
#include "napi_errors.h"
#include "socket_counts.h"

namespace sockmon {

namespace {

void ResetCounts(RecordSink& sink) { static_cast<SocketCounts&>(sink).Clear(); }
void ResetListeners(RecordSink& sink) { static_cast<ListenTable&>(sink).Clear(); }

// One dump's counts, copied out of the reader's counting state: a few entries per (peer, port, state).
// A v4-mapped peer of an AF_INET6 socket and the same peer of an AF_INET socket share a group.
struct DumpResult {
  CountMap groups;
  IdleMap idle;
  LiveSegmentsMap live_segments;
  NewTimeWaitMap new_time_wait;
  size_t idle_width = 0;
  size_t live_segments_width = 0;
  uint64_t scanned = 0;
  uint64_t duplicates = 0;
  ListenTable listeners;
  DumpStats stats;

  void Merge(const SocketCounts& counts, const ListenTable& lane_listeners, const DumpStats& lane_stats) {
    listeners.Merge(lane_listeners);
    for (const auto& [key, group] : counts.counts()) {
      GroupCounts& into = groups[key];
      into.sockets += group.sockets;
      into.live += group.live;
    }
    idle_width = counts.idle_buckets();
    for (const auto& [key, buckets] : counts.idle()) {
      std::vector<uint32_t>& into = idle[key];
      if (into.empty()) into.assign(buckets.size(), 0);
      for (size_t b = 0; b < buckets.size(); ++b) into[b] += buckets[b];
    }
    live_segments_width = counts.live_segment_buckets();
    for (const auto& [key, live] : counts.live_segments()) {
      LiveSegments& into = live_segments[key];
      if (into.buckets.empty()) into.buckets.assign(live.buckets.size(), 0);
      for (size_t b = 0; b < live.buckets.size(); ++b) into.buckets[b] += live.buckets[b];
      into.sum += live.sum;
    }
    for (const auto& [key, count] : counts.new_time_wait()) new_time_wait[key] += count;
    scanned += counts.scanned();
    duplicates += counts.duplicates();
    stats.recv_calls += lane_stats.recv_calls;
    stats.bytes += lane_stats.bytes;
    stats.restarts += lane_stats.restarts;
  }
};

class DiagReader : public Napi::ObjectWrap<DiagReader> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DiagReader",
                       {InstanceMethod("dump", &DiagReader::Dump), InstanceMethod("close", &DiagReader::Close)});
  }

  explicit DiagReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DiagReader>(info) {}

  // Runs on a worker thread. One dump at a time per reader: a socket cannot carry two. Both families are
  // needed (IPv4 peers of a dual-stack listener are AF_INET6 sockets), and each request walks the kernel's
  // whole socket table, so the AF_INET6 walk runs on a second thread alongside the AF_INET one. The
  // counting state lives as long as the reader, so its tables keep their capacity between dumps.
  // With `listen`, each lane then dumps the listening sockets of the watched ports on the same socket and
  // thread: that request walks only the kernel's listening table.
  void RunDump(const DumpRequest& request, const DumpRequest* listen, const std::vector<uint32_t>& idle_bounds_ms,
               const std::vector<uint32_t>& live_segment_bounds, DumpResult& result) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) throw SysError{EBADF, "recvmsg"};
    for (Lane& lane : lanes_) {
      lane.counts.Reset(idle_bounds_ms, live_segment_bounds);
      lane.listeners.Clear();
      lane.stats = DumpStats{};
    }
    std::exception_ptr v6_error;
    auto dump_v6 = [&] {
      try {
        lanes_[1].Dump(AF_INET6, request, listen);
      } catch (...) {
        v6_error = std::current_exception();
      }
    };
    std::thread v6;
    try {
      v6 = std::thread(dump_v6);
    } catch (const std::system_error&) {
      dump_v6();  // no thread to be had: walk the two tables one after the other
    }
    std::exception_ptr v4_error;
    try {
      lanes_[0].Dump(AF_INET, request, listen);
    } catch (...) {
      v4_error = std::current_exception();
    }
    if (v6.joinable()) v6.join();
    if (v4_error) std::rethrow_exception(v4_error);
    if (v6_error) std::rethrow_exception(v6_error);
    for (Lane& lane : lanes_) lane.counts.CommitTimeWait();  // only whole dumps: a partial one would miss cookies
    result.Merge(lanes_[0].counts, lanes_[0].listeners, lanes_[0].stats);
    result.Merge(lanes_[1].counts, lanes_[1].listeners, lanes_[1].stats);
  }

 private:
  Napi::Value Dump(const Napi::CallbackInfo& info);

  Napi::Value Close(const Napi::CallbackInfo& info) {
    closed_ = true;
    // A dump in flight holds the lock: it finishes, and the sockets close with the reader.
    if (mutex_.try_lock()) {
      for (Lane& lane : lanes_) lane.socket.Close();
      mutex_.unlock();
    }
    return info.Env().Undefined();
  }

  struct Lane {
    DiagSocket socket;
    SocketCounts counts;
    ListenTable listeners;
    DumpStats stats;
    void Dump(uint8_t family, const DumpRequest& request, const DumpRequest* listen) {
      socket.Dump(family, request, counts, ResetCounts, stats);
      if (listen) socket.Dump(family, *listen, listeners, ResetListeners, stats);
    }
  };

  std::mutex mutex_;
  std::atomic<bool> closed_{false};
  Lane lanes_[2];  // AF_INET, AF_INET6
};

class DumpWorker : public Napi::AsyncWorker {
 public:
  DumpWorker(Napi::Env env, DiagReader* reader, Napi::Object reader_object, DumpRequest request,
             std::optional<DumpRequest> listen, std::vector<uint32_t> idle_bounds_ms,
             std::vector<uint32_t> live_segment_bounds)
      : Napi::AsyncWorker(env, "sockmon:dump"),
        deferred_(Napi::Promise::Deferred::New(env)),
        reader_(reader),
        reader_ref_(Napi::Persistent(reader_object)),
        request_(std::move(request)),
        listen_(std::move(listen)),
        idle_bounds_ms_(std::move(idle_bounds_ms)),
        live_segment_bounds_(std::move(live_segment_bounds)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      reader_->RunDump(request_, listen_ ? &*listen_ : nullptr, idle_bounds_ms_, live_segment_bounds_, result_);
    } catch (const SysError& error) {
      error_ = error;
      SetError("dump failed");  // OnError builds the real Error from error_
    } catch (const std::bad_alloc&) {
      error_ = SysError{ENOMEM, "malloc"};
      SetError("dump failed");
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    const size_t n = result_.groups.size();
    auto peers = Napi::Uint8Array::New(env, n * 16);
    auto ports = Napi::Uint16Array::New(env, n);
    auto states = Napi::Uint8Array::New(env, n);
    auto values = Napi::Uint32Array::New(env, n);
    auto live = Napi::Uint32Array::New(env, n);
    size_t i = 0;
    for (const auto& [key, group] : result_.groups) {
      std::memcpy(peers.Data() + i * 16, key.peer, 16);
      ports[i] = key.port;
      states[i] = key.state;
      values[i] = group.sockets;
      live[i] = group.live;
      ++i;
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("scanned", double(result_.scanned));
    result.Set("duplicates", double(result_.duplicates));
    result.Set("peers", peers);
    result.Set("ports", ports);
    result.Set("states", states);
    result.Set("counts", values);
    result.Set("live", live);
    if (!idle_bounds_ms_.empty()) result.Set("idle", IdleGroups(env));
    if (!live_segment_bounds_.empty()) result.Set("liveSegments", LiveSegmentGroups(env));
    result.Set("newTimeWait", NewTimeWait(env));
    if (listen_) {
      result.Set("listeners", Listeners(env));
      result.Set("listenersDropped", double(result_.listeners.dropped()));
    }
    result.Set("recvCalls", double(result_.stats.recv_calls));
    result.Set("bytes", double(result_.stats.bytes));
    result.Set("restarts", result_.stats.restarts);
    deferred_.Resolve(result);
  }

  // {peers, ports, ...}: one entry per (peer, port) group of `map`; `fill(result, n)` adds the group arrays
  // of n entries, `set(i, value)` fills entry i of them.
  template <typename Map, typename Fill>
  static Napi::Object PeerPortGroups(Napi::Env env, const Map& map, Fill fill) {
    const size_t n = map.size();
    auto peers = Napi::Uint8Array::New(env, n * 16);
    auto ports = Napi::Uint16Array::New(env, n);
    Napi::Object result = Napi::Object::New(env);
    auto set = fill(result, n);
    size_t i = 0;
    for (const auto& [key, value] : map) {
      std::memcpy(peers.Data() + i * 16, key.peer, 16);
      ports[i] = key.port;
      set(i++, value);
    }
    result.Set("peers", peers);
    result.Set("ports", ports);
    return result;
  }

  // {peers, ports, buckets}: group i's bucket b is buckets[i * (bounds + 1) + b], not cumulative.
  Napi::Object IdleGroups(Napi::Env env) {
    const size_t width = result_.idle_width;
    return PeerPortGroups(env, result_.idle, [&](Napi::Object& result, size_t n) {
      auto buckets = Napi::Uint32Array::New(env, n * width);
      result.Set("buckets", buckets);
      return [buckets, width](size_t i, const std::vector<uint32_t>& counts) mutable {
        std::copy(counts.begin(), counts.end(), buckets.Data() + i * width);
      };
    });
  }

  // {peers, ports, buckets, sums}: buckets as IdleGroups'; sums[i] the data segments of group i's connections.
  Napi::Object LiveSegmentGroups(Napi::Env env) {
    const size_t width = result_.live_segments_width;
    return PeerPortGroups(env, result_.live_segments, [&](Napi::Object& result, size_t n) {
      auto buckets = Napi::Uint32Array::New(env, n * width);
      auto sums = Napi::Float64Array::New(env, n);
      result.Set("buckets", buckets);
      result.Set("sums", sums);
      return [buckets, sums, width](size_t i, const LiveSegments& live) mutable {
        std::copy(live.buckets.begin(), live.buckets.end(), buckets.Data() + i * width);
        sums[i] = double(live.sum);
      };
    });
  }

  // {peers, ports, counts}: TIME-WAIT sockets per (peer, port) whose cookie the previous dump did not have.
  Napi::Object NewTimeWait(Napi::Env env) {
    return PeerPortGroups(env, result_.new_time_wait, [&](Napi::Object& result, size_t n) {
      auto counts = Napi::Uint32Array::New(env, n);
      result.Set("counts", counts);
      return [counts](size_t i, uint32_t count) mutable { counts[i] = count; };
    });
  }

  // {families, addresses, ports, queues, limits}: listener i's address is addresses[i * 16 .. i * 16 + 15].
  Napi::Object Listeners(Napi::Env env) {
    const std::vector<ListenEntry>& entries = result_.listeners.entries();
    const size_t n = entries.size();
    auto families = Napi::Uint8Array::New(env, n);
    auto addresses = Napi::Uint8Array::New(env, n * 16);
    auto ports = Napi::Uint16Array::New(env, n);
    auto queues = Napi::Uint32Array::New(env, n);
    auto limits = Napi::Uint32Array::New(env, n);
    for (size_t i = 0; i < n; ++i) {
      families[i] = entries[i].family;
      std::memcpy(addresses.Data() + i * 16, entries[i].local, 16);
      ports[i] = entries[i].port;
      queues[i] = entries[i].queue;
      limits[i] = entries[i].limit;
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("families", families);
    result.Set("addresses", addresses);
    result.Set("ports", ports);
    result.Set("queues", queues);
    result.Set("limits", limits);
    return result;
  }

  void OnError(const Napi::Error&) override { deferred_.Reject(MakeSysError(Env(), error_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  DiagReader* reader_;
  Napi::ObjectReference reader_ref_;  // keeps the reader (and its socket) alive while the dump runs
  DumpRequest request_;
  std::optional<DumpRequest> listen_;
  std::vector<uint32_t> idle_bounds_ms_;
  std::vector<uint32_t> live_segment_bounds_;
  DumpResult result_;
  SysError error_{0, ""};
};

// dump({states: number, sport: number, bytecode: Uint8Array, idleBoundsMs?: Uint32Array, liveSegmentBounds?:
// Uint32Array,
//       listen?: {sport: number, bytecode: Uint8Array}}): Promise<RawDump>
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
  std::vector<uint32_t> idle_bounds_ms;
  Napi::Value bounds = options.Get("idleBoundsMs");
  if (bounds.IsTypedArray() && bounds.As<Napi::TypedArray>().TypedArrayType() == napi_uint32_array) {
    auto array = bounds.As<Napi::Uint32Array>();
    idle_bounds_ms.assign(array.Data(), array.Data() + array.ElementLength());
    std::sort(idle_bounds_ms.begin(), idle_bounds_ms.end());
  }
  std::vector<uint32_t> live_segment_bounds;
  Napi::Value segment_bounds = options.Get("liveSegmentBounds");
  if (segment_bounds.IsTypedArray() && segment_bounds.As<Napi::TypedArray>().TypedArrayType() == napi_uint32_array) {
    auto array = segment_bounds.As<Napi::Uint32Array>();
    live_segment_bounds.assign(array.Data(), array.Data() + array.ElementLength());
    std::sort(live_segment_bounds.begin(), live_segment_bounds.end());
  }
  request.tcp_info = !idle_bounds_ms.empty() || !live_segment_bounds.empty();
  std::optional<DumpRequest> listen;
  Napi::Value listen_options = options.Get("listen");
  if (listen_options.IsObject()) {
    Napi::Object listen_object = listen_options.As<Napi::Object>();
    Napi::Value listen_bytecode = listen_object.Get("bytecode");
    if (!listen_object.Get("sport").IsNumber() || !listen_bytecode.IsTypedArray() ||
        listen_bytecode.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(env, "dump() request's listen needs sport (number) and bytecode (Uint8Array)");
    }
    constexpr uint32_t kListenState = 1u << 10;
    listen.emplace();
    listen->states = kListenState;
    listen->sport = uint16_t(listen_object.Get("sport").As<Napi::Number>().Uint32Value());
    auto listen_program = listen_bytecode.As<Napi::Uint8Array>();
    listen->bytecode.assign(listen_program.Data(), listen_program.Data() + listen_program.ElementLength());
  }

  auto* worker = new DumpWorker(env, this, info.This().As<Napi::Object>(), std::move(request), std::move(listen),
                                std::move(idle_bounds_ms), std::move(live_segment_bounds));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

Napi::Function DefineDiagReader(Napi::Env env) { return DiagReader::Define(env); }

}  // namespace sockmon
