#!/usr/bin/env bash
# Upgrade check before a release: the agent of an older revision serves a VIP
# under load, with one long-lived connection open; it is stopped and this
# tree's agent starts on its pins; then it is rolled back: the old agent
# again, on this tree's pins. PASS needs: no failed connect (through the
# upgrade and the rollback), the adopting start logged, no malformed record,
# the long-lived connection's close reported by the new agent with its VIP
# and every byte, this tree's CLI reading the old agent, the two agents'
# versions told apart, and the old agent running again after the rollback.
#
#   scripts/upgrade-check.sh OLD_REV        (as root; this tree built first)
#
# Everything runs on loopback (VIP 127.77.0.200, backend 127.0.0.1:18200) in
# a cgroup the script creates; the old revision is built in a temporary
# worktree. All of it - processes (by PID), pins, cgroup, worktree - is
# removed at exit, also on failure.
set -euo pipefail

OLD_REV=${1:?usage: scripts/upgrade-check.sh OLD_REV}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NEW_CLI="$ROOT/dist/src/cli/main.js"
[ -f "$NEW_CLI" ] || { echo "upgrade-check: $NEW_CLI missing: run scripts/setup.sh (or npm run build) first" >&2; exit 2; }
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$CG2" ] || { echo "upgrade-check: no cgroup v2 mount (see sockmesh doctor)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/sockmesh-upgrade.XXXXXX)
OLD="$WORK/old"
CGNAME="sockmesh-upgrade-$$"
CG="$CG2/$CGNAME"
INSTANCE="upg$$"
ARGS=(-c "$WORK/mesh.yaml" --instance "$INSTANCE" --cgroup-root "$CGNAME" --metrics-address 127.0.0.1:0
  --api-socket "$WORK/api.sock" --report-interval 1s)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # Anything still in our cgroup was started by this script.
  for procs in "$CG"/*/cgroup.procs; do [ -f "$procs" ] && xargs -r kill -KILL < "$procs" 2>/dev/null || true; done
  sleep 0.2
  node "$NEW_CLI" agent "${ARGS[@]}" --uninstall >/dev/null 2>&1 || true
  # This tree's agents lock the instance with a file; it outlives them by design, not this check.
  rm -f "$(node -e 'console.log(require(process.argv[1]).lockPath(process.argv[2]))' "$ROOT/dist/src/agent/instance-lock.js" "/sys/fs/bpf/sockmesh/$INSTANCE" 2>/dev/null)" 2>/dev/null || true
  for d in "$CG/client" "$CG/server" "$CG"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
  git -C "$ROOT" worktree remove --force "$OLD" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { echo "[upgrade-check] $*" >&2; }

step "building $OLD_REV in a temporary worktree (about a minute)"
git -C "$ROOT" worktree add --detach "$OLD" "$OLD_REV" >/dev/null 2>&1
cp -a "$ROOT/node_modules" "$OLD/"
(cd "$OLD" && make -C bpf >/dev/null && npx node-gyp rebuild --nodedir=/usr -j 2 >/dev/null 2>&1 && npx tsc -p tsconfig.json)

cat > "$WORK/mesh.yaml" <<EOF
apiVersion: sockmesh.io/v1alpha1
kind: Mesh
network:
  vipCIDRs: [127.77.0.0/16]
services:
  - name: web
    vips: [127.77.0.200]
    ports:
      - { port: 80, targetPort: 18200 }
    backends:
      - { address: 127.0.0.1 }
workloads:
  - { name: client, cgroup: $CGNAME/client }
  - { name: server, cgroup: $CGNAME/server }
EOF
cat > "$WORK/server.js" <<'EOF'
require('net').createServer((s) => {
  s.on('data', (d) => { if (d.toString() === 'ping') s.write('pong'); });
  s.on('error', () => {});
  s.on('end', () => s.end());
}).listen(18200, '127.0.0.1');
EOF
# One connection sending 1000 bytes every 200 ms for LONG_MS (a line when it
# has closed), and short connections in a loop (4 at a time) for SHORT_MS,
# all through the VIP; a summary line at the end.
cat > "$WORK/client.js" <<'EOF'
const net = require('net');
const dur = Number(process.argv[2]);
const shortDur = Number(process.argv[3]);
const errors = {}; let shortOk = 0; let longBytes = 0; let longPort = 0; let stop = false;
const fail = (k) => (e) => { errors[k + e.code] = (errors[k + e.code] || 0) + 1; };
const long = net.connect({ host: '127.77.0.200', port: 80 }, () => {
  longPort = long.localPort; // gone once the socket closes
  const t = setInterval(() => { long.write(Buffer.alloc(1000, 1)); longBytes += 1000; }, 200);
  setTimeout(() => { clearInterval(t); long.end(); }, dur);
});
long.on('error', fail('long:'));
long.on('data', () => {});
setTimeout(() => (stop = true), shortDur);
function once() {
  if (stop) return;
  const s = net.connect({ host: '127.77.0.200', port: 80 }, () => s.write('ping'));
  s.on('data', () => { shortOk++; s.end(); });
  s.on('error', fail(''));
  s.on('close', () => setTimeout(once, 10));
}
for (let i = 0; i < 4; i++) once();
long.on('close', () => console.log(JSON.stringify({ longDone: true })));
setTimeout(() => {
  console.log(JSON.stringify({ errors, shortOk, longBytes, longPort }));
  process.exit(0);
}, Math.max(dur, shortDur) + 300);
EOF

mkdir -p "$CG/client" "$CG/server"
# Waits until an agent's log says it runs (CI machines start slower than this
# one: a fixed sleep would let the load begin before the programs are there).
wait_running() {
  local log=$1 pid=$2
  for _ in $(seq 1 150); do
    grep -q '"msg":"agent running"' "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "upgrade-check: the agent exited before running:" >&2; tail -5 "$log" >&2; return 1; }
    sleep 0.2
  done
  echo "upgrade-check: no 'agent running' in $log after 30 s:" >&2; tail -5 "$log" >&2; return 1
}

# Run in the background: exec makes the background subshell the process itself, so its PID is the one to kill.
in_cgroup() { local cg=$1; shift; exec sh -c 'echo $$ > "$0/cgroup.procs"; exec "$@"' "$cg" "$@"; }
in_cgroup "$CG/server" node "$WORK/server.js" & PIDS+=($!)
step "old agent ($OLD_REV) up"
node "$OLD/dist/src/cli/main.js" agent "${ARGS[@]}" 2> "$WORK/old.log" & OLD_PID=$!; PIDS+=($OLD_PID)
wait_running "$WORK/old.log" "$OLD_PID"
in_cgroup "$CG/client" node "$WORK/client.js" 9000 17000 > "$WORK/client.out" & CLIENT=$!; PIDS+=($CLIENT)
sleep 3
# Version skew: an operator's CLI from this tree asks the old agent (its API fields only grew since).
skew=0
for cmd in status services connections; do
  node "$NEW_CLI" "$cmd" --socket "$WORK/api.sock" -o json > "$WORK/skew-$cmd.json" 2> "$WORK/skew-$cmd.err" || { skew=1; cat "$WORK/skew-$cmd.err" >&2; }
done
echo "$skew" > "$WORK/skew.rc"
# A method the old agent lacks: a clear refusal, not a wrong answer.
node "$NEW_CLI" connections --open --socket "$WORK/api.sock" > /dev/null 2> "$WORK/skew-open.err" && echo "answered" > "$WORK/skew-open.rc" || echo "refused" > "$WORK/skew-open.rc"
step "stopping the old agent under load; 1 s with no agent; then this tree's agent on its pins"
kill -TERM "$OLD_PID"; wait "$OLD_PID" || true
sleep 1
node "$NEW_CLI" agent "${ARGS[@]}" 2> "$WORK/new.log" & NEW_PID=$!; PIDS+=($NEW_PID)
wait_running "$WORK/new.log" "$NEW_PID"
for _ in $(seq 1 100); do grep -q longDone "$WORK/client.out" && break; sleep 0.1; done
sleep 1
node "$NEW_CLI" connections --socket "$WORK/api.sock" -o json > "$WORK/conns.json"
node "$NEW_CLI" status --socket "$WORK/api.sock" -o wide >&2
node "$NEW_CLI" status --socket "$WORK/api.sock" -o json > "$WORK/new-status.json"
step "rolling back under load: this tree's agent stopped, 1 s with no agent, the old agent again on its pins"
kill -TERM "$NEW_PID"; wait "$NEW_PID" || true
sleep 1
node "$OLD/dist/src/cli/main.js" agent "${ARGS[@]}" 2> "$WORK/back.log" & BACK_PID=$!; PIDS+=($BACK_PID)
wait_running "$WORK/back.log" "$BACK_PID" && echo 0 > "$WORK/back.rc" || echo 1 > "$WORK/back.rc"
wait "$CLIENT"
kill -TERM "$BACK_PID" 2>/dev/null; wait "$BACK_PID" || true

node - "$WORK" "$ROOT" <<'EOF'
const fs = require('fs');
const [dir, root] = process.argv.slice(2);
const client = JSON.parse(fs.readFileSync(`${dir}/client.out`, 'utf8').trim().split('\n').pop());
const logs = fs.readFileSync(`${dir}/new.log`, 'utf8').split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return { msg: l }; } });
const conns = JSON.parse(fs.readFileSync(`${dir}/conns.json`, 'utf8'));
const records = Array.isArray(conns) ? conns : conns.items ?? conns.connections ?? [];
const long = records.find((r) => r.side === 'client' && r.kind === 'close' && r.local?.port === client.longPort);
// Mid-rollout, an operator tells the nodes' agents apart by the version status reports.
const versionOf = (file) => { try { return JSON.parse(fs.readFileSync(file, 'utf8')).version; } catch { return undefined; } };
const [oldVersion, newVersion] = [versionOf(`${dir}/skew-status.json`), versionOf(`${dir}/new-status.json`)];
const thisVersion = JSON.parse(fs.readFileSync(`${root}/package.json`, 'utf8')).version;
const checks = [
  ["this tree's CLI reads the old agent (status, services, connections)", fs.readFileSync(`${dir}/skew.rc`, 'utf8').trim() === '0', ''],
  // 0.1 lacks ListOpenConnections (0.2 on answers it): a clear refusal, never a wrong answer.
  ['connections --open against the old agent: answered, or refused saying why', fs.readFileSync(`${dir}/skew-open.rc`, 'utf8').trim() === 'answered' ||
    /newer than the agent/.test(fs.readFileSync(`${dir}/skew-open.err`, 'utf8')),
    fs.readFileSync(`${dir}/skew-open.rc`, 'utf8').trim() === 'answered' ? 'answered' : fs.readFileSync(`${dir}/skew-open.err`, 'utf8').trim().split('\n')[0]],
  ['status tells the two agents apart by version', !!oldVersion && newVersion === thisVersion && oldVersion !== newVersion, `old ${oldVersion}, new ${newVersion}`],
  ['no connect failed, through the upgrade and the rollback', Object.keys(client.errors).length === 0, JSON.stringify(client.errors)],
  ['short connections flowed', client.shortOk > 100, `${client.shortOk}`],
  ['the new agent adopted the pinned state', logs.some((l) => l.msg === 'dataplane adopted'), logs.filter((l) => l.msg === 'map replaced').map((l) => `${l.map}: ${l.action}`).join(', ') || 'no map replaced'],
  ['no malformed record', !logs.some((l) => l.msg === 'malformed telemetry record skipped'), ''],
  ['the long-lived connection was reported closed, with its VIP and every byte', !!long && long.vip?.address === '127.77.0.200' && long.bytesSent === client.longBytes,
    long ? `${long.bytesSent}/${client.longBytes} bytes, vip ${long.vip?.address}` : 'no close record'],
];
// After a rollback the old agent runs on this tree's programs and maps (it adopts them as they are).
// Records only grow from 0.2 on, so 0.2 and later must read this tree's; 0.1 cannot - said, not
// failed: traffic is what must hold.
const back = fs.readFileSync(`${dir}/back.log`, 'utf8');
const backMalformed = back.includes('malformed telemetry record skipped');
const readsLonger = !!oldVersion && !/^0\.[01]\./.test(oldVersion);
checks.push(['the old agent runs again on this tree\'s pins (rollback)', fs.readFileSync(`${dir}/back.rc`, 'utf8').trim() === '0',
  backMalformed ? "it cannot read this tree's records: telemetry stops until --uninstall and a fresh start" : 'it reads their records']);
if (readsLonger) checks.push([`the old agent (${oldVersion}) reads this tree's records after the rollback`, !backMalformed, '']);
let ok = true;
for (const [what, pass, detail] of checks) {
  console.log(`${pass ? 'ok  ' : 'FAIL'} ${what}${detail ? ` (${detail})` : ''}`);
  ok &&= pass;
}
console.log(ok ? 'PASS' : 'FAIL: see the logs above; the agents logged to stderr');
process.exit(ok ? 0 : 1);
EOF
