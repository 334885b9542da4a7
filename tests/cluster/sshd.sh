#!/usr/bin/env bash
# An sshd on localhost for tests (the DVC SSH remote): its own host key, config, client key and port in STATE_DIR,
# key-based logins for the current user only; nothing in /etc/ssh is read or changed.
#
#   tests/cluster/sshd.sh start STATE_DIR   # writes STATE_DIR/{id_ed25519,port,sshd_config}, starts sshd, waits for it
#   tests/cluster/sshd.sh stop  STATE_DIR   # stops the sshd this script started there (by its pid file)
#   tests/cluster/sshd.sh logs  STATE_DIR   # its log
#
# Exit status 3: no sshd here and it cannot be installed (not root), or an unprivileged sshd cannot log this user
# in; the message says why. The package
# (openssh-server) comes from the project's set-up (`make cluster-packages`) when missing and root.
set -euo pipefail

cmd=${1:-}; state=${2:-}
[[ -n "$cmd" && -n "$state" ]] || { echo "usage: $0 start|stop|logs STATE_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$state"; state=$(cd "$state" && pwd)
sshd=/usr/sbin/sshd

case "$cmd" in
stop)
  if [[ -s "$state/sshd.pid" ]]; then
    pid=$(cat "$state/sshd.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$state/sshd.pid"
  fi
  exit 0 ;;
logs) [[ -f "$state/sshd.log" ]] && { echo "=== $state/sshd.log (last 60 lines)"; tail -n 60 "$state/sshd.log"; }; exit 0 ;;
start) ;;
*) echo "usage: $0 start|stop|logs STATE_DIR" >&2; exit 2 ;;
esac

if [[ ! -x $sshd ]] || ! command -v ssh-keygen >/dev/null 2>&1; then
  if [[ "$(id -u)" != 0 ]]; then
    echo "cannot start a test sshd: openssh-server is not installed and not root (as root: make cluster-packages)" >&2
    exit 3
  fi
  make -C "$root" --no-print-directory cluster-packages >&2
  [[ -x $sshd ]] || { echo "cannot start a test sshd: $sshd still missing" >&2; exit 3; }
fi

chmod 700 "$state"
[[ -f "$state/host_ed25519" ]] || ssh-keygen -q -t ed25519 -N '' -f "$state/host_ed25519"
[[ -f "$state/id_ed25519" ]] || ssh-keygen -q -t ed25519 -N '' -C dcpipe-test -f "$state/id_ed25519"
cp "$state/id_ed25519.pub" "$state/authorized_keys" && chmod 600 "$state/authorized_keys"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "$port" > "$state/port"
mkdir -p /run/sshd 2>/dev/null || true  # privilege separation directory (root's sshd insists on it)
cat > "$state/sshd_config" <<CONF
# written by tests/cluster/sshd.sh
ListenAddress 127.0.0.1
Port $port
HostKey $state/host_ed25519
PidFile $state/sshd.pid
AuthorizedKeysFile $state/authorized_keys
AllowUsers $(id -un)
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel VERBOSE
CONF
$sshd -t -f "$state/sshd_config"
$sshd -f "$state/sshd_config" -E "$state/sshd.log"
for _ in $(seq 50); do
  if ssh -q -i "$state/id_ed25519" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no \
       -o UserKnownHostsFile=/dev/null "$(id -un)@127.0.0.1" true 2>/dev/null; then
    echo "test sshd up: $(id -un)@127.0.0.1:$port, key $state/id_ed25519"; exit 0
  fi
  sleep 0.2
done
echo "the test sshd did not accept a key login on port $port" >&2
"$0" logs "$state" >&2
"$0" stop "$state"
# an unprivileged sshd can only log its own user in, and not one whose account is locked: a machine matter
if [[ "$(id -u)" != 0 ]]; then echo "cannot run a test sshd as uid $(id -u): its key login failed (log above)" >&2; exit 3; fi
exit 1
