{
  "targets": [
    {
      "target_name": "sockmon",
      "sources": [
        "native/addon.cc",
        "native/close_watcher.cc",
        "native/close_watcher_binding.cc",
        "native/diag_parse.cc",
        "native/diag_socket.cc",
        "native/listen_table.cc",
        "native/napi_errors.cc",
        "native/peer_matcher.cc",
        "native/reader_binding.cc",
        "native/sd_notify.cc",
        "native/socket_counts.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"]
    }
  ]
}
