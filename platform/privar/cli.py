"""``privar``: the command line. It parses, and calls the command's recipe (``privar.recipes``).
Errors a user can cause end in one line and exit code 2.

The commands that start Ray (``run``, ``resume``, ``farm``, ``train``) or read encoders back from
MLflow (``pareto``) show privar's lines and real errors only, unless ``--verbose`` asks for
everything Ray, Tune, Ray Data, Optuna and MLflow print
(:func:`privar.console.configure_console`, set before the recipe runs)."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from privar.config import brief, key_name, parse_yaml
from privar.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + line
        raise UserError(f"{message} (see {self.prog} --help)")


def _key_values(pairs: Sequence[str], flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a mapping, each value read as YAML (``4``, ``[12, 16]``, ``null``)
    as a study file's values are; a mistake is a :class:`UserError` naming ``flag`` and the key."""
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} {brief(p)}: expected key=value")
        out[key] = parse_yaml(value, f"{flag} {key_name(key)}")
    return out


def _progress(what: str):
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 1.0:
            last[0] = now
            print(f"  {what}: {done}/{total}", file=sys.stderr, flush=True)

    return report


def cmd_data_synth(args: argparse.Namespace) -> int:
    from privar.data.synthetic import SynthSpec, write_synthetic

    try:
        spec = SynthSpec(**_key_values(args.option, "--option"))
    except TypeError as e:
        raise UserError(f"--option: {e}") from None
    manifest = write_synthetic(Path(args.out), spec)
    print(f"wrote the synthetic set: {manifest}")
    return 0


def _probe(records, args: argparse.Namespace, force: bool):
    """Probe ``records`` with the --workers, --timeout and --decoder flags both commands take."""
    from privar.data.probe import probe_records

    return probe_records(
        records,
        workers=args.workers,
        timeout_s=args.timeout,
        decoder_name=args.decoder,
        progress=_progress("probed"),
        force=force,
    )


def cmd_data_scan(args: argparse.Namespace) -> int:
    from privar.data.adapters import scan_dataset
    from privar.data.manifest import write_manifest, write_quarantine

    records = scan_dataset(args.adapter, args.root, **_key_values(args.option, "--option"))
    result = _probe(records, args, force=False)
    out = write_manifest(result.records, args.out)
    q = write_quarantine(result.quarantined, out.with_name(out.stem + ".quarantine.csv"))
    print(f"{out}: {len(result.records)} videos; {len(result.quarantined)} quarantined -> {q}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    """Exit code 0 when a study can use the manifest's decodable videos, however many were
    quarantined; 1 when the quarantine leaves a split a study needs without a video."""
    from privar.data.manifest import (
        one_split_labels,
        read_manifest,
        split_problem,
        write_quarantine,
    )

    records = read_manifest(args.manifest)
    result = _probe(records, args, force=True)
    by_split = Counter(r.split for r in result.records)
    print(
        f"{args.manifest}: {len(records)} videos, {len(result.records)} decodable, "
        f"{len(result.quarantined)} quarantined"
    )
    print("  " + ", ".join(f"{s}: {n}" for s, n in sorted(by_split.items())))
    print(
        f"  actions: {len({r.action for r in result.records})}, "
        f"privacy labels: {len({r.privacy for r in result.records})}"
    )
    for q in result.quarantined:
        print(f"  quarantined: {q.path}: {q.reason}")
    for line in one_split_labels(result.records):
        print(f"  warning: {line}")
    if args.quarantine:
        write_quarantine(result.quarantined, args.quarantine)
    problem = split_problem(result.records)
    if problem:
        print(f"  unusable: {problem}, once the broken videos are quarantined")
    return 1 if problem else 0


def cmd_run(args: argparse.Namespace) -> int:
    from privar.recipes.run_study import run_study

    overrides = _key_values(args.set, "--set")
    if args.storage:  # the same as --set search.storage=URI, checked like it
        overrides["search.storage"] = args.storage
    return run_study(args.study, address=args.address, tracking_uri=args.tracking_uri,
                     overrides=overrides, resume=args.command == "resume")  # fmt: skip


def cmd_pareto(args: argparse.Namespace) -> int:
    from privar.recipes.select_front import pareto_study

    return pareto_study(args.study, tracking_uri=args.tracking_uri, out=args.out)


def cmd_farm(args: argparse.Namespace) -> int:
    from privar.recipes.attack import farm_one

    if bool(args.run) == bool(args.checkpoint):
        raise UserError("farm: give either --run RUN_ID or --checkpoint PATH --study STUDY")
    if args.checkpoint and not args.study:
        raise UserError("farm: --checkpoint needs --study STUDY (its data and farm settings)")
    return farm_one(args.run, args.checkpoint, args.study, address=args.address,
                    tracking_uri=args.tracking_uri)  # fmt: skip


def cmd_train(args: argparse.Namespace) -> int:
    from privar.recipes.train_once import train_once

    train_once(args.study, address=args.address, device=args.device)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from privar.validate import StudyProblems, validate_file

    overrides = _key_values(args.set, "--set")
    failed = False
    for path in args.study:  # every file, and every problem of each, one line each
        try:
            study = validate_file(path, overrides)
        except UserError as e:
            failed = True
            for line in e.lines if isinstance(e, StudyProblems) else [str(e)]:
                print(f"privar: error: {line}", file=sys.stderr)
            continue
        print(f"ok: {path} ({study.name}, scheme {study.scheme}, "
              f"{len(study.search.space)} searched parameters)")  # fmt: skip
    return 2 if failed else 0


def cmd_submit(args: argparse.Namespace) -> int:
    from privar.recipes.submit import run_args, submit_study

    overrides = _key_values(args.set, "--set")
    if args.storage:  # checked here as `privar run --storage` checks it
        overrides["search.storage"] = args.storage
    job_args = run_args(args.study, args.tracking_uri, args.set, args.storage)
    try:  # the job runs this privar's `run` on the cluster: its command line must parse here
        build_parser().parse_args(job_args)
    except UserError as e:
        raise UserError(f"submit: the job's `privar {' '.join(job_args)}`: {e}") from None
    return submit_study(args.study, args.address, tracking_uri=args.tracking_uri, sets=args.set,
                        overrides=overrides, storage=args.storage, follow=args.follow)  # fmt: skip


def cmd_status(args: argparse.Namespace) -> int:
    from privar.recipes.submit import status

    return status(args.address)


def _address_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="an existing Ray cluster (default: a local Ray)")


def _tracking_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///mlflow.db)")


def _verbose_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also show what Ray, its workers, Tune, Ray Data, Optuna and MLflow "
                   "print (default: privar's progress lines and errors only)")  # fmt: skip


def _set_flag(p: argparse.ArgumentParser, helptext: str) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=helptext)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="privar", description="Privacy-preserving action recognition studies.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    for name, helptext in (
        ("run", "search a study, farm its candidates, print the Pareto front"),
        ("resume", "finish the newest unfinished run of a study (nothing done twice)"),
    ):
        run = sub.add_parser(name, help=helptext)
        run.add_argument("study", help="study file (YAML), e.g. studies/smoke.yaml")
        _address_flag(run)
        _tracking_flag(run)
        _set_flag(run, "override a study field, e.g. --set search.num_trials=4")
        run.add_argument(
            "--storage",
            help="where Tune keeps the search's state and checkpoints: "
            "a folder every node shares or an object-store URI (search.storage)",
        )
        _verbose_flag(run)
        run.set_defaults(func=cmd_run)

    dashboard = "the cluster's Ray dashboard, http://HEAD:8265"
    submit = sub.add_parser("submit", help="run a study on a cluster as a Ray job (Jobs API)")
    submit.add_argument("study", help="study file (YAML); it travels as the job's working dir")
    submit.add_argument("--address", required=True, help=dashboard)
    _tracking_flag(submit)
    _set_flag(submit, "override a study field, e.g. --set search.num_trials=4")
    submit.add_argument(
        "--storage",
        help="the job's `privar run --storage`: a folder every "
        "node shares or an object-store URI (search.storage)",
    )
    submit.add_argument(
        "--follow",
        action="store_true",
        help="stream the job's logs; exit 0 when it succeeds, 1 when not",
    )
    submit.set_defaults(func=cmd_submit)

    stat = sub.add_parser("status", help="the cluster's privar jobs and how far each got")
    stat.add_argument("--address", required=True, help=dashboard)
    stat.set_defaults(func=cmd_status)

    par = sub.add_parser("pareto", help="the study's Pareto front from MLflow: table, CSV, plot")
    par.add_argument("study", help="study file (YAML)")
    _tracking_flag(par)
    par.add_argument("--out", help="folder for pareto.csv and pareto.png (default: the run's)")
    _verbose_flag(par)  # it downloads encoders from MLflow, whose progress bars are noise
    par.set_defaults(func=cmd_pareto)

    farm = sub.add_parser("farm", help="attack one encoder with the study's adversary farm")
    farm.add_argument("--run", help="a finished trial's MLflow run id")
    farm.add_argument("--checkpoint", help="an encoder.pt or a training checkpoint file")
    farm.add_argument("--study", help="study file (YAML); needed with --checkpoint")
    _address_flag(farm)
    _tracking_flag(farm)
    _verbose_flag(farm)
    farm.set_defaults(func=cmd_farm)

    train = sub.add_parser("train", help="train the study's scheme once, without search")
    train.add_argument("study", help="study file (YAML)")
    _address_flag(train)
    train.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    _verbose_flag(train)
    train.set_defaults(func=cmd_train)

    val = sub.add_parser("validate", help="check study files; builds nothing, reads no data")
    val.add_argument("study", nargs="+", help="study files (YAML)")
    _set_flag(val, "override a field first, e.g. --set adversarial.alpha=2")
    val.set_defaults(func=cmd_validate)

    data = sub.add_parser("data", help="datasets: generate, scan, check")
    dsub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)

    synth = dsub.add_parser("synth", help="write the synthetic video set and its manifest")
    synth.add_argument("out", help="output folder")
    synth.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a SynthSpec field, e.g. -o num_actors=4 (repeatable)",
    )
    synth.set_defaults(func=cmd_data_synth)

    for name, func, helptext in (
        ("scan", cmd_data_scan, "build a probed manifest from a dataset layout"),
        ("check", cmd_data_check, "probe every file of a manifest; list the quarantined ones"),
    ):
        c = dsub.add_parser(name, help=helptext)
        if name == "scan":
            c.add_argument(
                "adapter", help="kth, sbu, ipn, ucf101, hmdb51, jester, manifest, synthetic"
            )
            c.add_argument("root", help="the dataset's root folder")
            c.add_argument("--out", "-O", required=True, help="manifest CSV to write")
            c.add_argument(
                "--option",
                "-o",
                action="append",
                default=[],
                metavar="KEY=VALUE",
                help="an adapter option, e.g. -o fold=2 (repeatable)",
            )
        else:
            c.add_argument("manifest", help="manifest CSV")
            c.add_argument("--quarantine", help="also write the quarantined files to this CSV")
        c.add_argument("--decoder", default="decord", choices=["decord", "pyav"])
        c.add_argument("--timeout", type=float, default=30.0, help="seconds per file")
        c.add_argument("--workers", type=int, default=None, help="probe processes")
        c.set_defaults(func=func)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "address", None):
            from privar.cluster import use_token_if_present

            use_token_if_present()
        if hasattr(args, "verbose"):  # a command that starts Ray or reads MLflow: first
            from privar.console import configure_console

            configure_console(args.verbose)
        return args.func(args)
    except UserError as e:
        print(f"privar: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("privar: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
