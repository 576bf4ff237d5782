"""Command-line entry point ``actionmd``: one subcommand per workflow rule.

Each subcommand takes its configuration as a JSON string (``--config``), the
resolved part of config.yaml that the step depends on, and logs its progress
to stderr (the rules redirect it to results/logs/).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from actionmd.naming import family, systems_of  # dependency-free

# the numerical libraries are imported after the thread limits are set (see main)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS")


def _json(text: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--config is not valid JSON: {exc}") from exc


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="actionmd", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("reference", help="velocity-Verlet reference trajectory of a few-body system")
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--out", required=True)

    p = sub.add_parser("dataset", help="pair a reference trajectory into a training set")
    p.add_argument("--kind", choices=["direct", "symplectic"], required=True)
    p.add_argument("--trajectory", required=True)
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--out", required=True)

    p = sub.add_parser("train", help="train a direct or generating-function model")
    p.add_argument("--kind", choices=["direct", "symplectic"], required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoint", default=None, help="resume from / save to this file after every epoch")
    p.add_argument("--threads", type=int, default=1)

    p = sub.add_parser(
        "rollout", help="roll out one method: reference, vv_large, direct, symplectic_kK, symplectic_converged"
    )
    p.add_argument("--method", required=True)
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--direct", default=None)
    p.add_argument("--symplectic", default=None)
    p.add_argument("--out", required=True)

    p = sub.add_parser("metrics", help="table of energy and trajectory errors of the rollouts")
    p.add_argument("--out", required=True)
    p.add_argument("rollouts", nargs="+")

    p = sub.add_parser("figure", help="the paper's figure for a few-body system")
    p.add_argument("--system", required=True)
    p.add_argument("--pdf", required=True)
    p.add_argument("--png", default=None)
    p.add_argument("rollouts", nargs="+")

    # atomistic systems (argon): LAMMPS reference, metatrain models, metatomic rollouts
    p = sub.add_parser("md-reference", help="one LAMMPS reference run (NPT then NVE frames, extxyz)")
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--run", type=int, required=True, help="run index (seed = reference.seed + run)")
    p.add_argument("--workdir", default=None, help="checkpoints of an interrupted run (resumed)")
    p.add_argument("--out", required=True)

    p = sub.add_parser("water-equilibrate", help="q-TIP4P/f water equilibrated at the rollout temperature")
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)

    p = sub.add_parser("export-qtip4pf", help="q-TIP4P/f as a metatomic model (.pt) for ASE, LAMMPS, i-PI")
    p.add_argument("--config", type=_json, required=True, help="the resolved physics of water (Ewald parameters)")
    p.add_argument("--out", required=True)

    p = sub.add_parser("water-state-point", help="one q-TIP4P/f state point: Langevin NVT, then NVE frames")
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--volume", required=True, help="volume scale as in the file name, e.g. 1.00")
    p.add_argument("--temperature", type=int, required=True, help="K")
    p.add_argument("--initial", required=True, help="the equilibrated liquid (last frame used)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)

    # crystals driven by a reference ML potential (GeTe, aluminium)
    mlip_systems = list(systems_of("crystal"))
    md_systems = list(systems_of("lammps_lj", "water"))
    p = sub.add_parser("export-toy-potential", help="the tiny Morse metatomic model of the tests and the test preset")
    p.add_argument("--out", required=True)

    p = sub.add_parser("mlip-ramp", help="NPT heating and cooling ramps collecting structures (extxyz)")
    p.add_argument("--system", choices=mlip_systems, required=True)
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--potential-model", default=None, help="the exported reference potential (metatomic, toy)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)

    p = sub.add_parser("mlip-structure", help="one structure of the ramps: Langevin NVT, then NVE frames")
    p.add_argument("--system", choices=mlip_systems, required=True)
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--leg", choices=["heat", "cool"], required=True)
    p.add_argument("--temperature", type=int, required=True, help="K")
    p.add_argument("--ramp", required=True, help="the ramp file with the structures")
    p.add_argument("--potential-model", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)

    p = sub.add_parser("mlip-quench", help="GeTe: liquid samples quenched to the rollout temperature")
    p.add_argument("--system", choices=mlip_systems, required=True)
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--ramp", required=True)
    p.add_argument("--potential-model", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)

    p = sub.add_parser("mlip-rollout", help="one NVT (GeTe) or NPT (aluminium) rollout of one method and run")
    p.add_argument("--system", choices=mlip_systems, required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--run", type=int, default=0)
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--initial", required=True, help="extxyz of the initial states (frame = run)")
    p.add_argument("--direct", default=None)
    p.add_argument("--symplectic", default=None)
    p.add_argument("--potential-model", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)

    p = sub.add_parser("gete-metrics", help="GeTe metrics (CSV: T, T_Ge - T_Te, final energy, cost over the quenches)")
    p.add_argument("--out", required=True)
    p.add_argument("rollouts", nargs="+")

    p = sub.add_parser("gete-figure", help="GeTe Fig. 3: potential energy vs log t, T_Ge - T_Te per method")
    p.add_argument("--pdf", required=True)
    p.add_argument("--png", default=None)
    p.add_argument("rollouts", nargs="+")

    p = sub.add_parser("aluminium-metrics", help="Table 1 (CSV: T, V, wall time per 100 ps, speedup)")
    p.add_argument("--config", type=_json, required=True, help="the resolved 'analysis' section")
    p.add_argument("--out", required=True)
    p.add_argument("rollouts", nargs="+")

    p = sub.add_parser("aluminium-figure", help="Table 1 as a figure: V and T against time per method, the table below")
    p.add_argument("--config", type=_json, required=True, help="the resolved 'analysis' section")
    p.add_argument("--pdf", required=True)
    p.add_argument("--png", default=None)
    p.add_argument("rollouts", nargs="+")

    p = sub.add_parser("md-dataset", help="metatrain datasets (both models) from the reference runs")
    p.add_argument("--system", choices=[*md_systems, *mlip_systems], required=True)
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--equilibrated", default=None, help="water: the equilibrated liquid, the rollouts' start")
    p.add_argument("trajectories", nargs="+")

    p = sub.add_parser("md-train", help="train and export a FlashMD model with metatrain (resumes)")
    p.add_argument("--kind", choices=["direct", "symplectic"], required=True)
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--datasets", required=True, help="folder of the md-dataset files")
    p.add_argument("--workdir", required=True, help="metatrain's run folder (options, checkpoints, logs)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)

    p = sub.add_parser("md-model-errors", help="validation errors of the exported models per species and target (CSV)")
    p.add_argument("--direct", required=True, help="exported direct model")
    p.add_argument("--direct-val", required=True, help="its validation set (direct_val.extxyz)")
    p.add_argument("--symplectic", required=True, help="exported generating-function model")
    p.add_argument("--symplectic-val", required=True, help="its validation set (symplectic_val.extxyz)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)

    p = sub.add_parser("frontier", help="cost-accuracy frontier of an atomistic system from its metrics table")
    p.add_argument("--system", required=True)
    p.add_argument("--metrics", required=True, help="results/<system>/metrics.csv (aluminium: table1.csv)")
    p.add_argument("--pdf", required=True)
    p.add_argument("--png", default=None)

    p = sub.add_parser(
        "md-rollout", help="one rollout (argon NVE, water NVT): reference, direct, symplectic_kK, symplectic_converged"
    )
    p.add_argument("--system", choices=md_systems, required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--initial", required=True, help="extxyz whose first frame is the initial state")
    p.add_argument("--direct", default=None)
    p.add_argument("--symplectic", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)

    p = sub.add_parser("md-metrics", help="energy/temperature drift (water: + g_OO, diffusion) and cost (CSV)")
    p.add_argument("--system", choices=md_systems, required=True)
    p.add_argument("--config", type=_json, default=None, help="water: the resolved analysis settings")
    p.add_argument("--out", required=True)
    p.add_argument("rollouts", nargs="+")

    p = sub.add_parser("md-figure", help="the paper's figure of an atomistic system (argon Fig. 5, water Fig. 2)")
    p.add_argument("--system", choices=md_systems, required=True)
    p.add_argument("--config", type=_json, default=None, help="water: the resolved analysis settings")
    p.add_argument("--pdf", required=True)
    p.add_argument("--png", default=None)
    p.add_argument("rollouts", nargs="+")
    return ap


def usable_threads(requested: int) -> int:
    """Threads a job may use: as many as it was given (``--threads``), at most the CPUs it may run on.

    ``os.sched_getaffinity`` is the set of CPUs this process may use (a SLURM allocation, a
    ``taskset``, or the whole machine), so a job never runs more threads than there are CPUs
    under it, however large Snakemake's ``--cores`` was.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS)
        available = os.cpu_count() or 1
    return max(1, min(int(requested), available))


def _limit_threads(threads: int) -> None:
    """Thread pools of OpenMP, BLAS and torch limited to ``threads``, before numpy and torch start theirs."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already set in this process (tests calling main twice)
        pass


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if hasattr(args, "threads"):
        requested, args.threads = args.threads, usable_threads(args.threads)
        if args.threads < requested:
            logging.getLogger("actionmd").info(
                "using %d threads, not %d: this process may run on %d CPUs", args.threads, requested, args.threads
            )
        _limit_threads(args.threads)
    from actionmd.config import ConfigError
    from actionmd.io import InputError

    try:
        _run(args)
    except (InputError, ConfigError) as exc:
        logging.getLogger("actionmd").error("%s", exc)
        return 2
    return 0


def _analysis(args: argparse.Namespace) -> dict | None:
    """The resolved ``analysis`` section given with ``--config`` (None when not given)."""
    return (args.config or {}).get("analysis")


def handlers() -> dict[str, Callable[[argparse.Namespace], Any]]:
    """Subcommand -> what it runs.

    The modules are imported here, not at the top: numpy and torch size their thread pools
    when first imported, so they must come after :func:`main` has set the thread limits.
    Atomistic commands pick the system's module by its family in the registry
    (:data:`actionmd.naming.SYSTEMS`), never by its name.
    """
    from actionmd.analysis import aluminium, frontier, gete
    from actionmd.analysis import argon as argon_analysis
    from actionmd.analysis import water as water_analysis
    from actionmd.atomistic import model_errors, training
    from actionmd.fewbody import steps as fewbody
    from actionmd.potentials.toy import export_toy_potential
    from actionmd.systems import argon, crystals, water

    systems = {"lammps_lj": argon, "water": water, "crystal": crystals}
    analyses = {"lammps_lj": argon_analysis, "water": water_analysis}

    def system(a: argparse.Namespace):
        return systems[family(a.system)]

    def dataset(a: argparse.Namespace) -> None:
        extra = {"equilibrated": a.equilibrated} if a.equilibrated is not None else {}
        system(a).build_dataset(a.config, a.trajectories, a.out_dir, **extra)

    def model_error_table(a: argparse.Namespace) -> None:
        models = [("direct", a.direct, a.direct_val), ("symplectic", a.symplectic, a.symplectic_val)]
        model_errors.write_summary(model_errors.summary(models), a.out)

    def aluminium_figure(a: argparse.Namespace) -> None:
        rolls = aluminium.load_aluminium(a.rollouts)
        table = aluminium.aluminium_table(rolls, None, discard=a.config["analysis"]["discard"])
        aluminium.aluminium_plot(rolls, table, a.pdf, a.png)

    def mlip_rollout(a: argparse.Namespace) -> None:
        files = (a.direct, a.symplectic, a.potential_model)
        crystals.run_rollout(a.method, a.config, a.initial, a.run, a.out, *files, threads=a.threads)

    return {
        "reference": lambda a: fewbody.simulate_reference(a.config, a.out),
        "dataset": lambda a: fewbody.build_dataset(a.kind, a.trajectory, a.config, a.out),
        "train": lambda a: fewbody.train_model(a.kind, a.dataset, a.config, a.out, a.checkpoint, a.threads),
        "rollout": lambda a: fewbody.run_rollout(a.method, a.config, a.out, a.direct, a.symplectic),
        "metrics": lambda a: fewbody.write_metrics(a.rollouts, a.out),
        "figure": lambda a: fewbody.plot(a.system, a.rollouts, a.pdf, a.png),
        "md-reference": lambda a: argon.simulate_reference(a.config, a.run, a.out, a.workdir),
        "water-equilibrate": lambda a: water.equilibrate(a.config, a.out, a.threads),
        "export-qtip4pf": lambda a: water.export_potential(a.config, a.out),
        "water-state-point": lambda a: water.simulate_state_point(
            a.config, a.volume, a.temperature, a.initial, a.out, a.threads
        ),
        "export-toy-potential": lambda a: export_toy_potential(a.out),
        "mlip-ramp": lambda a: crystals.ramp(a.config, a.out, a.potential_model, a.threads),
        "mlip-structure": lambda a: crystals.simulate_structure(
            a.config, a.leg, a.temperature, a.ramp, a.out, a.potential_model, a.threads
        ),
        "mlip-quench": lambda a: crystals.quench(a.config, a.ramp, a.out, a.potential_model, a.threads),
        "mlip-rollout": mlip_rollout,
        "gete-metrics": lambda a: gete.gete_metrics(gete.load_gete(a.rollouts), a.out),
        "gete-figure": lambda a: gete.gete_plot(gete.load_gete(a.rollouts), a.pdf, a.png),
        "aluminium-metrics": lambda a: aluminium.aluminium_table(
            aluminium.load_aluminium(a.rollouts), a.out, discard=a.config["analysis"]["discard"]
        ),
        "aluminium-figure": aluminium_figure,
        "md-dataset": dataset,
        "md-train": lambda a: training.train_system(a.kind, a.config, a.datasets, a.workdir, a.out, a.threads),
        "md-model-errors": model_error_table,
        "frontier": lambda a: frontier.make(a.system, a.metrics, a.pdf, a.png),
        "md-rollout": lambda a: system(a).run_rollout(
            a.method, a.config, a.initial, a.out, a.direct, a.symplectic, a.threads
        ),
        "md-metrics": lambda a: analyses[family(a.system)].write_metrics(a.rollouts, a.out, _analysis(a)),
        "md-figure": lambda a: analyses[family(a.system)].plot(a.rollouts, a.pdf, a.png, _analysis(a)),
    }


def _run(args: argparse.Namespace) -> None:
    handlers()[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
