#!/usr/bin/env bash
# Sets sockmesh up on a fresh Debian 12 machine, as root (--bench: also the
# benchmarks' peers: nginx, wrk, haproxy, iptables, and perf for
# `bench service --profile`): system packages,
# npm packages, bpffs, then builds the BPF objects, the addon and the
# TypeScript. Safe to run again. The README's first two commands and
# .ci/run all start here.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }
fail() { printf 'setup: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (apt-get, bpffs and BPF programs need it): sudo $0"

APT_PACKAGES=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make g++ python3 iproute2 procps valgrind)
# bench/service's peers, only on request: installing nginx and haproxy starts
# their system services, which tests and CI do not need.
[ "${1:-}" = "--bench" ] && APT_PACKAGES+=(nginx wrk haproxy iptables conntrack linux-perf)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  step "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update failed: check the Debian mirror in /etc/apt/sources.list"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || fail "apt-get install failed for: ${missing[*]}"
else
  step "apt: all packages present"
fi

command -v node >/dev/null || fail "Node.js 20+ is required (apt-get install nodejs npm)"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || fail "Node.js 20+ is required, found $(node -v)"

step "npm ci"
npm ci --no-audit --no-fund --loglevel=error || fail "npm ci failed: is the npm registry reachable?"

[ -r /sys/kernel/btf/vmlinux ] || fail "this kernel has no BTF (/sys/kernel/btf/vmlinux): sockmesh needs CONFIG_DEBUG_INFO_BTF=y"
if ! mountpoint -q /sys/fs/bpf; then
  step "mounting bpffs at /sys/fs/bpf"
  mount -t bpf bpf /sys/fs/bpf || fail "cannot mount bpffs: mount -t bpf bpf /sys/fs/bpf"
fi

step "build: BPF objects"
npm run --silent build:bpf
step "build: native addon (node-gyp against /usr/include/node)"
npm run --silent build:native >/dev/null
step "build: TypeScript"
npm run --silent build:ts
step "ready: try 'node dist/src/cli/main.js doctor'"
