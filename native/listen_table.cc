#include "listen_table.h"

namespace sockmon {

namespace {
constexpr uint8_t kListen = 10;
}  // namespace

void ListenTable::Clear() {
  entries_.clear();
  seen_.Clear();
  dropped_ = 0;
}

void ListenTable::Add(const DiagRecord& record) {
  // The request asks for LISTEN only; anything else (a malformed or foreign reply) is not a listener.
  if (record.state != kListen || !seen_.Insert(record.cookie)) return;
  ListenEntry entry;
  entry.family = record.family;
  std::memcpy(entry.local, record.local, 16);
  entry.port = record.sport;
  entry.queue = record.rqueue;
  entry.limit = record.wqueue;
  entry.sockets = 1;
  AddEntry(entry);
}

void ListenTable::Merge(const ListenTable& other) {
  for (const ListenEntry& entry : other.entries_) AddEntry(entry);
  dropped_ += other.dropped_;
}

void ListenTable::AddEntry(const ListenEntry& entry) {
  for (ListenEntry& into : entries_) {
    if (into.family == entry.family && into.port == entry.port && std::memcmp(into.local, entry.local, 16) == 0) {
      into.queue += entry.queue;
      into.limit += entry.limit;
      into.sockets += entry.sockets;
      return;
    }
  }
  if (entries_.size() == kMaxListeners) {
    dropped_ += entry.sockets;
    return;
  }
  entries_.push_back(entry);
}

}  // namespace sockmon
