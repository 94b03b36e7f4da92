# A single-node Slurm on localhost for tests (sourced by tests/slurm_grid.sh): munged, slurmctld
# and slurmd from Debian's slurm-wlm and munge, configured in a temp folder, on free ports, run in
# the foreground of background jobs so they are stopped by pid. No systemd, no /etc changes.
#
#   slurm_start DIR     starts them (SLURM_CONF exported); returns 77 with the reason in
#                       $slurm_why when Slurm is not installed or cannot start here (call it
#                       directly, not in $(...): the pids and SLURM_CONF must stay in this shell)
#   slurm_stop          stops what slurm_start started (safe to call twice; call it from a trap)

slurm_pids=()
slurm_why=""

slurm_stop() {
  local pid
  # Jobs first, through Slurm, so that no slurmstepd outlives the slurmd that started it.
  if [[ ${#slurm_pids[@]} -gt 0 && -n ${SLURM_CONF:-} ]]; then
    scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 100); do [[ -z $(squeue -h 2>/dev/null) ]] && break; sleep 0.1; done
  fi
  for pid in "${slurm_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${slurm_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  slurm_pids=()
}

# A TCP port nobody listens on (the kernel's choice).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

slurm_start() {
  local dir=$1 tool
  for tool in munged slurmctld slurmd sbatch squeue scontrol python3; do
    command -v "$tool" >/dev/null || { slurm_why="$tool not found (apt-get install slurm-wlm munge)"; return 77; }
  done
  if [[ $(id -u) != 0 ]]; then slurm_why="slurmd must run as root to start jobs (this test runs as $(id -un))"; return 77; fi
  mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
  chmod 700 "$dir/munge"
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 600 "$dir/munge/munge.key"
  munged -F -f --key-file="$dir/munge/munge.key" --socket="$dir/munge/socket" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed" >"$dir/munge/stdout.log" 2>&1 &
  slurm_pids+=($!)
  for _ in $(seq 50); do [[ -S $dir/munge/socket ]] && break; sleep 0.1; done
  [[ -S $dir/munge/socket ]] || { slurm_why="munged did not start: $(tail -3 "$dir/munge/munged.log" "$dir/munge/stdout.log" 2>/dev/null)"; return 77; }

  local host cpus ctld_port slurmd_port
  host=$(hostname -s)
  cpus=$(nproc)
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  cat >"$dir/slurm.conf" <<CONF
ClusterName=ffrtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -D -c -f "$SLURM_CONF" >"$dir/slurmctld.stdout" 2>&1 &
  slurm_pids+=($!)
  slurmd -D -f "$SLURM_CONF" >"$dir/slurmd.stdout" 2>&1 &
  slurm_pids+=($!)
  # Up when the node answers idle.
  local state=""
  for _ in $(seq 100); do
    state=$(sinfo -h -N -o %t 2>/dev/null | head -1)
    [[ $state == idle* ]] && return 0
    sleep 0.2
  done
  slurm_why="Slurm did not come up (node state '$state'): $(tail -3 "$dir/slurmctld.log" "$dir/slurmd.log" 2>/dev/null | tr '\n' ' ')"
  return 77
}
