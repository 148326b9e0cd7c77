/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Includes and small helpers shared by every sockmesh BPF program. */
#ifndef SOCKMESH_COMMON_H
#define SOCKMESH_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/*
 * Emits a struct's BTF into the object even when the program only reaches it
 * through a ring-buffer pointer, so user space can check its layout mirror
 * against the compiled object (test/kernel/bpf/layout-btf.test.ts). Costs one
 * pointer in .bss.
 */
#define EXPORT_STRUCT(name) struct name *__export_##name __attribute__((unused))

/* Errno values are not in vmlinux.h. */
#ifndef ENOENT
#define ENOENT 2
#endif
#ifndef ENOMEM
#define ENOMEM 12
#endif
#ifndef ENOSPC
#define ENOSPC 28
#endif
#ifndef EALREADY
#define EALREADY 114
#endif

#endif
