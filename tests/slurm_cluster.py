"""A throwaway single-node SLURM cluster on this host, for tests/test_slurm.py.

Debian's SLURM 22.05 (`apt-get install slurm-wlm munge`, as .ci/run does), run as root:
munged, slurmctld and slurmd on this host, one node in two partitions named as in
profiles/slurm/partitions.yaml: CPU_PARTITION (the default) and GPU_PARTITION. What the
configuration needs on a machine like CI's:

- ProctrackType=proctrack/linuxproc and TaskPlugin=task/none (no cgroups in a container);
- the node's RealMemory declared (otherwise every `--mem` request is refused), with
  SlurmdParameters=config_overrides so a smaller machine still registers (memory is
  declared, not enforced: the test preset's jobs use well under 1 GB each);
- the configuration at /etc/slurm/slurm.conf: with only SLURM_CONF set, `srun` inside a
  job fails with "Could not establish a configuration source";
- no accounting (no slurmdbd): the plugin must query `squeue`, and MinJobAge is an hour
  so that `squeue`/`scontrol` still know every job of the test when it checks them;
- GPUs: the node declares FAKE_GPUS GRES gpus backed by /dev/null and /dev/zero, so that
  `--gpus=1` (what the plugin emits for gpu=1) is schedulable on a machine without GPUs;
  the code finds no CUDA and runs on the CPU. A count-only GRES (gres.conf `Count=` without
  `File=`) does not work: slurmd 22.05 logs "Removing file-less GPU gpu:(null) from final
  GRES list" and the controller drains the node ("gres/gpu count reported lower than
  configured (0 < 1)");
- like a site whose CPU nodes have no GPUs, a job_submit.lua refuses a GPU request outside
  GPU_PARTITION, so a misplaced GPU job fails at sbatch as it would on a real cluster.

Cluster.stop() cancels the jobs, stops the daemons this module started (by their pid) and
puts back whatever it replaced under /etc (a munge key it created is removed again).
"""

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "profiles" / "slurm"
# the partitions of profiles/slurm/partitions.yaml (tests/test_slurm_profile.py checks they agree)
CPU_PARTITION = "cpu"
GPU_PARTITION = "gpu"
FAKE_GPUS = 2
REAL_MEMORY_MB = 16000
SLURM_ETC = Path("/etc/slurm")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN = Path("/run/munge")
BACKUP_SUFFIX = ".actionmd-test-backup"
PROGRAMS = ("munged", "munge", "unmunge", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")

JOB_SUBMIT_LUA = """\
-- Like a site whose CPU nodes have no GPUs: a GPU request outside partition {gpu} is refused.
function slurm_job_submit(job_desc, part_list, submit_uid)
   local tres = table.concat({{job_desc.tres_per_job or "", job_desc.tres_per_node or "",
                              job_desc.tres_per_task or "", job_desc.tres_per_socket or ""}}, ",")
   if string.find(tres, "gpu") and job_desc.partition ~= "{gpu}" then
      slurm.log_user("no GPUs in partition %s (asked for %s): submit GPU jobs to partition {gpu}",
                     tostring(job_desc.partition), tres)
      return slurm.ERROR
   end
   return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
   return slurm.SUCCESS
end

return slurm.SUCCESS
"""


def program(name):
    """Path of a SLURM or munge program; root's /usr/sbin may be missing from PATH."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/bin", "/sbin"):
        if os.access(f"{folder}/{name}", os.X_OK):
            return f"{folder}/{name}"
    return None


def unavailable():
    """Why the test cluster cannot run here, or None."""
    if program("slurmctld") is None:
        return "slurmctld is not installed (apt-get install slurm-wlm munge, as .ci/run does)"
    missing = [name for name in PROGRAMS if program(name) is None]
    if missing:
        return f"SLURM/munge programs missing: {', '.join(missing)}"
    if os.geteuid() != 0:
        return "the single-node test cluster runs SLURM's daemons as root (as in CI)"
    for daemon in ("slurmctld", "slurmd"):
        running = subprocess.run(["pgrep", "-x", daemon], capture_output=True, text=True).stdout.split()
        if running:
            return f"a {daemon} already runs on this host (pid {', '.join(running)}); not replacing its configuration"
    return None


def _munge_works():
    munge = subprocess.run([program("munge"), "-n"], capture_output=True)
    if munge.returncode != 0:
        return False
    return subprocess.run([program("unmunge")], input=munge.stdout, capture_output=True).returncode == 0


class Cluster:
    """One node, two partitions, started by start() and undone by stop()."""

    def __init__(self, base):
        self.base = Path(base)
        self.node = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self._procs = {}  # daemon -> Popen: only what this object started
        self._written = []  # files written under /etc: (path, backup or None)
        self._created_key = False

    # --- life cycle ---

    def start(self, timeout=90):
        try:
            self._start_munge()
            self._write_config()
            self._spawn("slurmctld", [program("slurmctld"), "-D", "-i"])
            self._spawn("slurmd", [program("slurmd"), "-D"])
            self._wait_until_idle(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if "slurmctld" in self._procs:
            try:
                ids = self.squeue("%i", "--states=PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED")
                if ids:
                    subprocess.run([program("scancel"), *ids], capture_output=True, timeout=30)
                deadline = time.monotonic() + 30  # let slurmd end their job steps (KillWait 5 s)
                while self.squeue("%i", "--states=RUNNING,COMPLETING") and time.monotonic() < deadline:
                    time.sleep(0.5)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass  # the controller is gone: the daemons are stopped below all the same
        for daemon in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.pop(daemon, None)
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for path, backup in reversed(self._written):
            path.unlink(missing_ok=True)
            if backup is not None:
                backup.rename(path)
        self._written = []
        if self._created_key:
            MUNGE_KEY.unlink(missing_ok=True)
            self._created_key = False

    # --- queries ---

    def run(self, *cmd, check=True, timeout=60):
        proc = subprocess.run([program(cmd[0]), *cmd[1:]], capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc.stdout

    def squeue(self, fmt, *args):
        return self.run("squeue", "--noheader", f"--format={fmt}", *args).split()

    def jobs(self):
        """Every job the controller knows (MinJobAge keeps finished ones for an hour), by job id."""
        out = self.run("scontrol", "show", "job", "--oneliner", check=False)
        records = {}
        for line in out.splitlines():
            fields = dict(re.findall(r"(\S+?)=(\S*)", line))
            if "JobId" in fields:
                records[fields["JobId"]] = fields
        return records

    def logs(self):
        """The end of slurmctld's and slurmd's logs, for error messages."""
        return {
            name: (self.base / f"{name}.log").read_text(errors="replace")[-3000:] for name in ("slurmctld", "slurmd")
        }

    # --- pieces ---

    def _start_munge(self):
        if not MUNGE_KEY.exists():
            MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
            MUNGE_KEY.write_bytes(os.urandom(1024))
            shutil.chown(MUNGE_KEY, "munge", "munge")
            MUNGE_KEY.chmod(0o400)
            self._created_key = True
        if _munge_works():
            return  # a munged already serves this host: use it, leave it running
        MUNGE_RUN.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_RUN, "munge", "munge")
        MUNGE_RUN.chmod(0o755)
        log = self.base / "munged.log"
        log.touch()
        shutil.chown(log, "munge", "munge")
        # as the munge user, as its service does (munged refuses root without --force)
        self._spawn("munged", [program("munged"), "--foreground", f"--log-file={log}"], user="munge")
        deadline = time.monotonic() + 20
        while not _munge_works():
            if time.monotonic() > deadline or self._procs["munged"].poll() is not None:
                raise RuntimeError(f"munged did not start: {(self.base / 'munged.log').read_text(errors='replace')}")
            time.sleep(0.2)

    def slurm_conf(self):
        b, node = self.base, self.node
        return f"""\
# written by tests/slurm_cluster.py for the test run; removed when it ends
ClusterName=actionmdtest
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={b}/state
SlurmdSpoolDir={b}/spool
SlurmctldPidFile={b}/slurmctld.pid
SlurmdPidFile={b}/slurmd.pid
SlurmctldLogFile={b}/slurmctld.log
SlurmdLogFile={b}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
KillWait=5
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={b}/jobcomp.txt
JobSubmitPlugins=lua
GresTypes=gpu
NodeName={node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={REAL_MEMORY_MB} Gres=gpu:{FAKE_GPUS} State=UNKNOWN
PartitionName={CPU_PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
PartitionName={GPU_PARTITION} Nodes={node} MaxTime=INFINITE State=UP
"""

    def _write_config(self):
        for sub in ("state", "spool"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        devices = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random"][:FAKE_GPUS]
        gres = "".join(f"NodeName={self.node} Name=gpu File={dev}\n" for dev in devices)
        files = {
            "slurm.conf": self.slurm_conf(),
            "gres.conf": gres,
            "job_submit.lua": JOB_SUBMIT_LUA.format(gpu=GPU_PARTITION),
        }
        SLURM_ETC.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            path = SLURM_ETC / name
            backup = None
            if path.exists():
                backup = path.with_name(name + BACKUP_SUFFIX)
                if backup.exists():  # left by an interrupted run: that one is the original
                    path.unlink()
                else:
                    path.rename(backup)
            self._written.append((path, backup))
            path.write_text(text)

    def _spawn(self, daemon, cmd, user=None):
        out = open(self.base / f"{daemon}.out", "w")  # noqa: SIM115
        self._procs[daemon] = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
        out.close()

    def _wait_until_idle(self, timeout):
        deadline = time.monotonic() + timeout
        states = []
        while time.monotonic() < deadline:
            for daemon, proc in self._procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{daemon} exited ({proc.returncode}): {self.logs()}")
            proc = subprocess.run(
                [program("sinfo"), "--noheader", "--Node", "--format=%P %T"], capture_output=True, text=True
            )
            states = proc.stdout.split()
            if proc.returncode == 0 and states and all(s == "idle" for s in states[1::2]):
                return
            time.sleep(0.5)
        reasons = subprocess.run([program("sinfo"), "-R"], capture_output=True, text=True).stdout
        raise RuntimeError(f"node not idle after {timeout} s: {states} {reasons}\n{self.logs()}")


def cancel(job_id):
    subprocess.run([program("scancel"), str(job_id)], check=True, capture_output=True, timeout=30)
