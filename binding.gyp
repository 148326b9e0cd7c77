{
  "targets": [
    {
      "target_name": "sockmesh_native",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/object.cc",
        "native/program.cc",
        "native/map.cc",
        "native/link.cc",
        "native/iter.cc",
        "native/ringbuf.cc",
        "native/mapped_ring.cc",
        "native/probe.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "libraries": ["-lbpf", "-lelf", "-lz"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "conditions": [
        ["'<!(echo $SOCKMESH_ASAN)'=='1'", {
          "cflags_cc": ["-fsanitize=address", "-fno-omit-frame-pointer"],
          "ldflags": ["-fsanitize=address"]
        }]
      ]
    }
  ]
}
