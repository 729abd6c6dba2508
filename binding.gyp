{
  "targets": [
    {
      "target_name": "scratchbox",
      "sources": ["src-native/addon.cc", "src-native/plan.cc", "src-native/child.c", "src-native/parent/seccomp.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-std=c++17", "-Wno-missing-field-initializers"],
      "ldflags": ["-Wl,-z,now", "-Wl,-z,relro"],
      "libraries": ["-l:libseccomp.a", "-Wl,--exclude-libs,libseccomp.a"]
    },
    {
      "target_name": "scratch-sleep",
      "type": "executable",
      "sources": ["src-native/demo/sleep.c"],
      "cflags": ["-O2", "-ffreestanding", "-fno-stack-protector", "-fno-pie", "-fno-asynchronous-unwind-tables"],
      "cflags!": ["-fPIC", "-pthread"],
      "ldflags": ["-static", "-nostdlib", "-no-pie", "-Wl,--build-id=none"],
      "ldflags!": ["-pthread", "-rdynamic"],
      "libraries!": ["-lpthread"]
    }
  ]
}
