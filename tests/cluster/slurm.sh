#!/usr/bin/env bash
# A one-node SLURM cluster on localhost, for tests: its own munged, slurmctld and slurmd, configured in STATE_DIR
# and touching nothing in /etc (clients find it through SLURM_CONF=STATE_DIR/slurm.conf).
#
#   tests/cluster/slurm.sh start STATE_DIR   # writes STATE_DIR/{slurm.conf,env,gpus}, starts the daemons, waits for the node
#   tests/cluster/slurm.sh stop  STATE_DIR   # stops the daemons this script started there (by their pid files)
#   tests/cluster/slurm.sh logs  STATE_DIR   # the daemons' logs (what a failing test prints)
#
# The node gets this machine's CPUs and memory (`slurmd -C`) and a `gpu` generic resource only where nvidia-smi
# lists GPUs. Two partitions, `cpu` (default) and `gpu`, both on the node, as the profile workflow/profiles/slurm
# names them. No slurmdbd and no accounts: jobs run with no account, and `sacct` has nothing to say, so the executor
# plugin must query `squeue` (--slurm-status-command squeue); MinJobAge keeps finished jobs visible to squeue.
# Ports are picked free, so two clusters (two test sessions) can run side by side.
#
# Exit status 3: this machine cannot run the cluster (not root, or the packages are missing and cannot be
# installed); the message says why. Packages come from the project's set-up (`make cluster-packages`) when missing.
set -euo pipefail

cmd=${1:-}; state=${2:-}
[[ -n "$cmd" && -n "$state" ]] || { echo "usage: $0 start|stop|logs STATE_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$state"; state=$(cd "$state" && pwd)

stop_pidfile() {  # stop the process named in a pid file (only that one), wait for it to exit
  local f=$1 pid
  [[ -s "$f" ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

case "$cmd" in
stop)
  if [[ -f "$state/slurm.conf" ]]; then  # cancel what is left, so no job step outlives its cluster
    SLURM_CONF="$state/slurm.conf" timeout 10 scancel --user="$(id -un)" 2>/dev/null || true
  fi
  stop_pidfile "$state/slurmd.pid"; stop_pidfile "$state/slurmctld.pid"; stop_pidfile "$state/munged.pid"
  exit 0 ;;
logs)
  for f in "$state"/log/*.log; do [[ -f "$f" ]] && { echo "=== $f (last 60 lines)"; tail -n 60 "$f"; }; done
  exit 0 ;;
start) ;;
*) echo "usage: $0 start|stop|logs STATE_DIR" >&2; exit 2 ;;
esac

missing() { local b; for b in munged slurmctld slurmd sbatch squeue scancel sinfo; do
  command -v "$b" >/dev/null 2>&1 || [[ -x /usr/sbin/$b ]] || echo "$b"; done; }
export PATH="$PATH:/usr/sbin:/sbin"
if [[ -n "$(missing)" ]]; then
  if [[ "$(id -u)" != 0 ]]; then
    echo "cannot start a test SLURM cluster: $(missing | tr '\n' ' ')missing and not root (as root: make cluster-packages)" >&2
    exit 3
  fi
  make -C "$root" --no-print-directory cluster-packages >&2
  [[ -z "$(missing)" ]] || { echo "cannot start a test SLURM cluster: still missing: $(missing | tr '\n' ' ')" >&2; exit 3; }
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "cannot start a test SLURM cluster: slurmd must run as root (this is uid $(id -u))" >&2
  exit 3
fi

mkdir -p "$state"/{log,spool,ctld,munge}
chmod 700 "$state/munge"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ctld_port=$(free_port); d_port=$(free_port)
while [[ "$d_port" == "$ctld_port" ]]; do d_port=$(free_port); done
node=$(hostname -s)

# munge: a private key and socket (the system's munged, if any, is left alone)
[[ -s "$state/munge/munge.key" ]] || { dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none; }
chmod 400 "$state/munge/munge.key"
munged --force --socket="$state/munge/munge.socket" --key-file="$state/munge/munge.key" \
  --pid-file="$state/munged.pid" --log-file="$state/log/munged.log" --seed-file="$state/munge/munged.seed"

# the node: this machine's CPUs and memory, and its GPUs (if any) as gres/gpu
hw=$(slurmd -C | head -1)  # NodeName=... CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=...
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$hw"; }
cpus=$(field CPUs); mem=$(( $(field RealMemory) * 95 / 100 ))  # slurmd drains a node reporting less than configured
ngpus=0
if command -v nvidia-smi >/dev/null 2>&1; then ngpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true); fi
gres_types=""; node_gres=""
: > "$state/gres.conf"
echo "$ngpus" > "$state/gpus"
if (( ngpus > 0 )); then
  gres_types="GresTypes=gpu"; node_gres="Gres=gpu:$ngpus"
  echo "Name=gpu File=/dev/nvidia[0-$((ngpus - 1))]" > "$state/gres.conf"
fi

cat > "$state/slurm.conf" <<CONF
# written by tests/cluster/slurm.sh: a one-node test cluster
ClusterName=dcpipe-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state/munge/munge.socket
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=600
KillWait=5
SchedulerParameters=defer_batch=0
$gres_types
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus Boards=$(field Boards) SocketsPerBoard=$(field SocketsPerBoard) CoresPerSocket=$(field CoresPerSocket) ThreadsPerCore=$(field ThreadsPerCore) RealMemory=$mem $node_gres State=UNKNOWN
PartitionName=cpu Nodes=$node Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$node MaxTime=INFINITE State=UP
CONF
# Clients find this cluster through SLURM_CONF. snakemake-executor-plugin-slurm-jobstep (0.6) drops every SLURM_*
# variable, SLURM_CONF included, from the environment of the `srun` it runs inside each job, which then looks for
# /etc/slurm/slurm.conf; a site configured through SLURM_CONF needs the same shim: an srun that restores it.
mkdir -p "$state/bin"
printf '#!/bin/sh\nSLURM_CONF="${SLURM_CONF:-%s}" exec %s "$@"\n' "$state/slurm.conf" "$(command -v srun)" > "$state/bin/srun"
chmod +x "$state/bin/srun"
printf 'export SLURM_CONF=%s\nexport PATH=%s:$PATH\n' "$state/slurm.conf" "$state/bin" > "$state/env"
export SLURM_CONF="$state/slurm.conf"

slurmctld -f "$state/slurm.conf"
slurmd -f "$state/slurm.conf" -N "$node"
for _ in $(seq 60); do
  st=$(sinfo -h -n "$node" -o %t 2>/dev/null | head -1 || true)
  [[ "$st" == idle* ]] && { echo "SLURM test cluster up: node $node ($cpus CPUs, $mem MB, $ngpus GPUs), SLURM_CONF=$SLURM_CONF"; exit 0; }
  sleep 0.5
done
echo "the test SLURM cluster did not come up (node state: '${st:-none}')" >&2
"$0" logs "$state" >&2
"$0" stop "$state"
exit 1
