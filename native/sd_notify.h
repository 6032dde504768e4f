// systemd's notification protocol (sd_notify(3)) without libsystemd: one datagram to $NOTIFY_SOCKET.
#pragma once

#include <string>

namespace sockmon {

// Sends `state` (e.g. "READY=1") to the AF_UNIX datagram socket at `path` ('@' = abstract namespace).
// Returns 0 or an errno.
int SdNotify(const std::string& path, const std::string& state);

}  // namespace sockmon
