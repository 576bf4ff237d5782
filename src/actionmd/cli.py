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

# the numerical libraries are imported after the thread limits are set (see main)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS")


def _json(text: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--config is not valid JSON: {exc}") from exc


def parser() -> argparse.ArgumentParser:
    from .config import MLIP  # light: no numpy

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
    mlip_systems = list(MLIP)
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

    p = sub.add_parser("gete-analysis", help="GeTe metrics (CSV) and Fig. 3 (potential energy vs log t, T_Ge - T_Te)")
    p.add_argument("--csv", required=True)
    p.add_argument("--pdf", required=True)
    p.add_argument("--png", default=None)
    p.add_argument("rollouts", nargs="+")

    p = sub.add_parser("aluminium-analysis", help="Table 1 (CSV: T, V, wall time per 100 ps) and its figure")
    p.add_argument("--config", type=_json, required=True, help="the resolved 'analysis' section")
    p.add_argument("--csv", required=True)
    p.add_argument("--pdf", default=None)
    p.add_argument("--png", default=None)
    p.add_argument("rollouts", nargs="+")

    p = sub.add_parser("md-dataset", help="metatrain datasets (both models) from the reference runs")
    p.add_argument("--system", choices=["argon", "water", *mlip_systems], default="argon")
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
    p.add_argument("--system", choices=["argon", "water"], default="argon")
    p.add_argument("--method", required=True)
    p.add_argument("--config", type=_json, required=True)
    p.add_argument("--initial", required=True, help="extxyz whose first frame is the initial state")
    p.add_argument("--direct", default=None)
    p.add_argument("--symplectic", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)

    p = sub.add_parser("md-metrics", help="energy/temperature drift (water: + g_OO, diffusion) and cost (CSV)")
    p.add_argument("--system", choices=["argon", "water"], default="argon")
    p.add_argument("--config", type=_json, default=None, help="water: the resolved analysis settings")
    p.add_argument("--out", required=True)
    p.add_argument("rollouts", nargs="+")

    p = sub.add_parser("md-figure", help="the paper's figure of an atomistic system (argon Fig. 5, water Fig. 2)")
    p.add_argument("--system", choices=["argon", "water"], default="argon")
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
    from actionmd.io import InputError

    from .config import ConfigError

    try:
        _run(args)
    except (InputError, ConfigError) as exc:
        logging.getLogger("actionmd").error("%s", exc)
        return 2
    return 0


def _analysis(config: dict | None) -> dict:
    from actionmd.io import InputError

    if config is None or "analysis" not in config:
        raise InputError("water metrics and figure need --config with the resolved 'analysis' section")
    return config["analysis"]


def _run(args: argparse.Namespace) -> None:
    from actionmd.fewbody import steps as fewbody
    from actionmd.io import InputError
    from actionmd.systems import argon, water

    from .config import MLIP

    if args.command == "reference":
        fewbody.simulate_reference(args.config, args.out)
    elif args.command == "dataset":
        fewbody.build_dataset(args.kind, args.trajectory, args.config, args.out)
    elif args.command == "train":
        fewbody.train_model(args.kind, args.dataset, args.config, args.out, args.checkpoint, args.threads)
    elif args.command == "rollout":
        fewbody.run_rollout(args.method, args.config, args.out, args.direct, args.symplectic)
    elif args.command == "metrics":
        fewbody.write_metrics(args.rollouts, args.out)
    elif args.command == "figure":
        fewbody.plot(args.system, args.rollouts, args.pdf, args.png)
    elif args.command == "md-reference":
        argon.simulate_reference(args.config, args.run, args.out, args.workdir)
    elif args.command == "water-equilibrate":
        water.equilibrate(args.config, args.out, args.threads)
    elif args.command == "export-qtip4pf":
        water.export_potential(args.config, args.out)
    elif args.command == "water-state-point":
        water.simulate_state_point(args.config, args.volume, args.temperature, args.initial, args.out, args.threads)
    elif args.command == "md-dataset" and args.system == "water":
        if args.equilibrated is None:
            raise InputError("md-dataset --system water needs --equilibrated (the rollouts' initial state)")
        water.build_dataset(args.config, args.trajectories, args.equilibrated, args.out_dir)
    elif args.command == "export-toy-potential":
        from actionmd.potentials.toy import export_toy_potential

        export_toy_potential(args.out)
    elif args.command == "frontier":
        from actionmd.analysis import frontier

        frontier.make(args.system, args.metrics, args.pdf, args.png)
    elif args.command == "md-model-errors":
        from actionmd.atomistic import model_errors

        rows = model_errors.summary(
            [("direct", args.direct, args.direct_val), ("symplectic", args.symplectic, args.symplectic_val)]
        )
        model_errors.write_summary(rows, args.out)
    elif args.command.startswith(("mlip-", "gete-", "aluminium-")) or getattr(args, "system", None) in MLIP:
        _run_mlip(args)
    elif args.command == "md-dataset":
        argon.build_dataset(args.config, args.trajectories, args.out_dir)
    elif args.command == "md-train":
        argon.train_model(args.kind, args.config, args.datasets, args.workdir, args.out, args.threads)
    elif args.command == "md-rollout":
        module = water if args.system == "water" else argon
        module.run_rollout(args.method, args.config, args.initial, args.out, args.direct, args.symplectic, args.threads)
    elif args.command == "md-metrics" and args.system == "water":
        water.write_metrics(args.rollouts, _analysis(args.config), args.out)
    elif args.command == "md-metrics":
        argon.write_metrics(args.rollouts, args.out)
    elif args.command == "md-figure" and args.system == "water":
        water.plot(args.rollouts, _analysis(args.config), args.pdf, args.png)
    elif args.command == "md-figure":
        argon.plot(args.rollouts, args.pdf, args.png)


def _run_mlip(args: argparse.Namespace) -> None:
    from actionmd.analysis import crystals as mlip_analysis
    from actionmd.io import InputError
    from actionmd.systems import crystals as mlip

    model = getattr(args, "potential_model", None)
    if args.command == "mlip-ramp":
        mlip.ramp(args.config, args.out, model, args.threads)
    elif args.command == "mlip-structure":
        mlip.simulate_structure(args.config, args.leg, args.temperature, args.ramp, args.out, model, args.threads)
    elif args.command == "mlip-quench":
        mlip.quench(args.config, args.ramp, args.out, model, args.threads)
    elif args.command == "mlip-rollout":
        files = (args.direct, args.symplectic, model)
        mlip.run_rollout(args.method, args.config, args.initial, args.run, args.out, *files, threads=args.threads)
    elif args.command == "md-dataset":
        mlip.build_dataset(args.config, args.trajectories, args.out_dir)
    elif args.command == "gete-analysis":
        rolls = mlip_analysis.load_gete(args.rollouts)
        mlip_analysis.gete_metrics(rolls, args.csv)
        mlip_analysis.gete_plot(rolls, args.pdf, args.png)
    elif args.command == "aluminium-analysis":
        rolls = mlip_analysis.load_aluminium(args.rollouts)
        table = mlip_analysis.aluminium_table(rolls, args.csv, discard=args.config["analysis"]["discard"])
        if args.pdf:
            mlip_analysis.aluminium_plot(rolls, table, args.pdf, args.png)
    else:
        raise InputError(f"{args.command} does not handle system {getattr(args, 'system', None)}")


if __name__ == "__main__":
    sys.exit(main())
