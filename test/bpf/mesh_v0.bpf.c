// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The mesh programs as an older sockmesh built them, for the upgrade test: a
 * smaller slot table, so the upgrade finds the pinned map defined otherwise
 * and copies it into a new one.
 */
#define MESH_SLOT_TABLE_SIZE 4096
#include "../../bpf/mesh.bpf.c"
