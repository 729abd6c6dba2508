{
  "targets": [
    {
      # The code that runs between clone and execve (src-native/child): built on its own, with no
      # libc to call (docs/child-safety.md). test/unit/child-libc.test.ts checks these objects with nm.
      "target_name": "sbx_child",
      "type": "static_library",
      "sources": [
        "src-native/child/clone3.c",
        "src-native/child/interp.c",
        "src-native/child/ops_exec.c",
        "src-native/child/ops_file.c",
        "src-native/child/ops_mount.c",
        "src-native/child/ops_ns.c",
        "src-native/child/ops_root.c",
        "src-native/child/ops_harden.c",
        "src-native/child/ops_init.c",
        "src-native/child/ops_join.c",
        "src-native/child/ops_seccomp.c",
        "src-native/child/ops_security.c",
        "src-native/child/ops_tty.c",
        "src-native/child/path.c",
        "src-native/child/sync.c"
      ],
      "cflags": ["-Wall", "-Wextra", "-O2", "-fPIC", "-fvisibility=hidden", "-ffreestanding", "-fno-builtin",
                 "-fno-stack-protector", "-fno-tree-loop-distribute-patterns", "-fno-exceptions"],
      "cflags_c": ["-std=gnu11"]
    },
    {
      "target_name": "scratchbox",
      "dependencies": ["sbx_child"],
      "sources": [
        "src-native/parent/addon.cc",
        "src-native/parent/base_mntns.cc",
        "src-native/parent/cgroupfs.cc",
        "src-native/parent/devices_bpf.cc",
        "src-native/parent/exec.cc",
        "src-native/parent/fdpass.cc",
        "src-native/parent/inroot.cc",
        "src-native/parent/helper_thread.cc",
        "src-native/parent/netns_pool.cc",
        "src-native/parent/plan.cc",
        "src-native/parent/process.cc",
        "src-native/parent/protocol.cc",
        "src-native/parent/pty.cc",
        "src-native/parent/root_pool.cc",
        "src-native/parent/seccomp.cc",
        "src-native/parent/shared_netns.cc",
        "src-native/parent/spawn.cc",
        "src-native/parent/sync_slots.cc",
        "src-native/parent/teardown.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
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
    },
    {
      # init: true's PID 1 (src-native/init/init.c): static and libc-free like scratch-sleep.
      "target_name": "scratch-init",
      "type": "executable",
      "sources": ["src-native/init/init.c"],
      "cflags": ["-O2", "-ffreestanding", "-fno-stack-protector", "-fno-pie", "-fno-asynchronous-unwind-tables"],
      "cflags!": ["-fPIC", "-pthread"],
      "ldflags": ["-static", "-nostdlib", "-no-pie", "-Wl,--build-id=none"],
      "ldflags!": ["-pthread", "-rdynamic"],
      "libraries!": ["-lpthread"]
    }
  ]
}
