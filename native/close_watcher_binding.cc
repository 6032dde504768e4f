#include "close_watcher_binding.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "close_watcher.h"
#include "napi_errors.h"

namespace sockmon {

namespace {

// new CloseWatcher({ports: Uint16Array, cidrs: [{ipv4, prefix, address: Uint8Array}], receiveBufferBytes,
//                   filter?: Uint8Array (struct sock_filter[], src/close_filter.ts),
//                   segmentBounds?: Uint32Array, idleBoundsMs?: Uint32Array (histogram bounds, ascending)})
class CloseWatcherWrap : public Napi::ObjectWrap<CloseWatcherWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "CloseWatcher",
        {InstanceMethod("take", &CloseWatcherWrap::Take), InstanceMethod("close", &CloseWatcherWrap::Close)});
  }

  explicit CloseWatcherWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CloseWatcherWrap>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "CloseWatcher takes an options object");
    Napi::Object options = info[0].As<Napi::Object>();
    Napi::Value ports_value = options.Get("ports");
    Napi::Value cidrs_value = options.Get("cidrs");
    if (!ports_value.IsTypedArray() || ports_value.As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array ||
        !cidrs_value.IsArray() || !options.Get("receiveBufferBytes").IsNumber()) {
      throw Napi::TypeError::New(env, "CloseWatcher needs ports (Uint16Array), cidrs (array), receiveBufferBytes");
    }
    auto ports_array = ports_value.As<Napi::Uint16Array>();
    std::vector<uint16_t> ports(ports_array.Data(), ports_array.Data() + ports_array.ElementLength());
    std::vector<PeerCidr> cidrs;
    Napi::Array cidr_list = cidrs_value.As<Napi::Array>();
    for (uint32_t i = 0; i < cidr_list.Length(); ++i) {
      Napi::Object item = cidr_list.Get(i).As<Napi::Object>();
      Napi::Value address = item.Get("address");
      if (!address.IsTypedArray() || address.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
        throw Napi::TypeError::New(env, "cidr.address must be a Uint8Array");
      }
      PeerCidr cidr{};
      cidr.ipv4 = item.Get("ipv4").ToBoolean();
      auto bytes = address.As<Napi::Uint8Array>();
      const size_t size = cidr.ipv4 ? 4 : 16;
      if (bytes.ElementLength() != size) throw Napi::TypeError::New(env, "cidr.address has the wrong length");
      cidr.prefix = uint8_t(std::min<uint32_t>(item.Get("prefix").ToNumber().Uint32Value(), size * 8));
      std::memcpy(cidr.address, bytes.Data(), size);
      cidrs.push_back(cidr);
    }
    const double buffer = options.Get("receiveBufferBytes").As<Napi::Number>().DoubleValue();
    if (!(buffer >= 0 && buffer <= double(1 << 30)))
      throw Napi::RangeError::New(env, "receiveBufferBytes must be 0 to 1 GiB");
    std::vector<sock_filter> filter;
    Napi::Value filter_value = options.Get("filter");
    if (!filter_value.IsUndefined()) {
      if (!filter_value.IsTypedArray() || filter_value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
          filter_value.As<Napi::Uint8Array>().ElementLength() % sizeof(sock_filter) != 0) {
        throw Napi::TypeError::New(env, "filter must be a Uint8Array of 8-byte sock_filter instructions");
      }
      auto bytes = filter_value.As<Napi::Uint8Array>();
      filter.resize(bytes.ElementLength() / sizeof(sock_filter));
      std::memcpy(filter.data(), bytes.Data(), bytes.ElementLength());
    }
    LifeBounds life{Bounds(env, options, "segmentBounds"), Bounds(env, options, "idleBoundsMs")};
    try {
      watcher_ = std::make_unique<CloseWatcher>(PeerMatcher(std::move(ports), std::move(cidrs)), int(buffer),
                                                std::move(filter), std::move(life));
    } catch (const SysError& error) {
      throw MakeSysError(env, error);
    }
  }

 private:
  // An optional Uint32Array option of histogram bounds, at most kMaxLifeBuckets - 1 of them.
  static std::vector<uint32_t> Bounds(Napi::Env env, Napi::Object options, const char* name) {
    Napi::Value value = options.Get(name);
    if (value.IsUndefined()) return {};
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
        value.As<Napi::Uint32Array>().ElementLength() >= CloseWatcher::kMaxLifeBuckets) {
      throw Napi::TypeError::New(env, std::string(name) + " must be a Uint32Array of at most 23 bounds");
    }
    auto array = value.As<Napi::Uint32Array>();
    return std::vector<uint32_t>(array.Data(), array.Data() + array.ElementLength());
  }

  // {peers, ports, closed: Float64Array}: closes since the last take, and what they did:
  // {segmentBuckets, idleBuckets}: Uint32Array, group i's bucket b at [i * (bounds + 1) + b], not cumulative;
  // {segmentSums, idleSumsMs}: Float64Array per group. {lostEvents, events, error}: since start.
  Napi::Value Take(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!watcher_) throw Napi::Error::New(env, "CloseWatcher is closed");
    const CloseWatcher::Closed taken = watcher_->Take();
    const size_t n = taken.size();
    const size_t segment_width = watcher_->life_bounds().segments.size() + 1;
    const size_t idle_width = watcher_->life_bounds().idle_ms.size() + 1;
    auto peers = Napi::Uint8Array::New(env, n * 16);
    auto ports = Napi::Uint16Array::New(env, n);
    auto closed = Napi::Float64Array::New(env, n);
    auto segment_buckets = Napi::Uint32Array::New(env, n * segment_width);
    auto segment_sums = Napi::Float64Array::New(env, n);
    auto idle_buckets = Napi::Uint32Array::New(env, n * idle_width);
    auto idle_sums = Napi::Float64Array::New(env, n);
    size_t i = 0;
    for (const auto& [key, closes] : taken) {
      std::memcpy(peers.Data() + i * 16, key.peer, 16);
      ports[i] = key.port;
      closed[i] = double(closes.closed);
      std::copy_n(closes.segments.begin(), segment_width, segment_buckets.Data() + i * segment_width);
      segment_sums[i] = double(closes.segments_sum);
      std::copy_n(closes.idle.begin(), idle_width, idle_buckets.Data() + i * idle_width);
      idle_sums[i] = double(closes.idle_sum_ms);
      ++i;
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("peers", peers);
    result.Set("ports", ports);
    result.Set("closed", closed);
    result.Set("segmentBuckets", segment_buckets);
    result.Set("segmentSums", segment_sums);
    result.Set("idleBuckets", idle_buckets);
    result.Set("idleSumsMs", idle_sums);
    result.Set("lostEvents", double(watcher_->drops()));
    result.Set("events", double(watcher_->events()));
    if (watcher_->error() != 0) result.Set("error", MakeSysError(env, SysError{watcher_->error(), "recv"}).Value());
    return result;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    watcher_.reset();  // joins the thread
    return info.Env().Undefined();
  }

  std::unique_ptr<CloseWatcher> watcher_;
};

}  // namespace

Napi::Function DefineCloseWatcher(Napi::Env env) { return CloseWatcherWrap::Define(env); }

}  // namespace sockmon
