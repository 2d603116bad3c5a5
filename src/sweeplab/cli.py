"""The `sweeplab` command. Heavy imports (torch, Lightning, MLflow) wait until a command needs them."""

from __future__ import annotations

import argparse
import sys

USAGE_EXAMPLES = """\
examples:
  sweeplab train experiment=fashion_cnn trainer.max_epochs=1 data.train_size=3000
  sweeplab sweep sweep=fashion_cnn
  sweeplab sweep sweep=digits_cnn sweep.n_trials=8 sweep.workers=2 trainer.max_epochs=3
  sweeplab sweep sweep=digits_cnn 'sweep.params.optimizer.lr=tag(log, interval(1e-4, 1e-2))'
  sweeplab worker sweep=fashion_cnn sweep.storage=postgresql+psycopg2://USER@HOST/DB
  sweeplab train experiment=digits_cnn optimizer=sgd optimizer.lr=0.05
  sweeplab train --print-config experiment=digits_cnn
  sweeplab train --config-dir ./my_conf experiment=my_experiment
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweeplab", description="Hydra-composed Lightning experiments, recorded in MLflow.",
        epilog=USAGE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in (
            ("train", "train one experiment and record it as an MLflow run"),
            ("sweep", "run an Optuna sweep (sweep=NAME): worker processes, pruning, resume"),
            ("worker", "join a running sweep's study from another shell or machine")):
        command = commands.add_parser(name, help=help_text, epilog=USAGE_EXAMPLES,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                             help="Hydra overrides: group=option, key=value, +new_key=value")
        command.add_argument("--config-dir", action="append", default=[], metavar="DIR",
                             help="a folder of your own configs (experiment/, model/, sweeps/, ...); repeatable")
        command.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may come after options too (`train --print-config a=1 b=2`).
    unknown = [a for a in extra if a.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = [*getattr(args, "overrides", []), *extra]
    try:
        return {"train": _train, "sweep": _sweep, "worker": _worker}[args.command](args)
    except KeyboardInterrupt:
        print("sweeplab: interrupted", file=sys.stderr)
        return 130


def _train(args) -> int:
    from sweeplab.config import compose_config, to_yaml
    from sweeplab.errors import ConfigError

    try:
        cfg = compose_config(args.overrides, args.config_dir)
        if args.print_config:
            print(to_yaml(cfg), end="")
            return 0
        from sweeplab.experiment import run_experiment
        result = run_experiment(cfg, overrides=args.overrides)
    except ConfigError as e:
        print(f"sweeplab: error: {e}", file=sys.stderr)
        return 2
    width = max(map(len, result.metrics), default=0)
    for name in sorted(result.metrics):
        print(f"{name:<{width}}  {result.metrics[name]:.6g}")
    print(f"MLflow run {result.run_id} ({result.state})")
    return 0


def _sweep(args) -> int:
    from sweeplab.errors import ConfigError

    if args.print_config:
        return _train(args)
    try:
        from sweeplab.sweep.driver import run_sweep
        return run_sweep(args.overrides, args.config_dir)
    except ConfigError as e:
        print(f"sweeplab: error: {e}", file=sys.stderr)
        return 2


def _worker(args) -> int:
    from sweeplab.config import compose_with_choices
    from sweeplab.errors import ConfigError

    try:
        from sweeplab.sweep.settings import read_settings
        settings = read_settings(*compose_with_choices(args.overrides, args.config_dir))
        from sweeplab.sweep.worker import work
        return work(settings, args.overrides, args.config_dir)
    except ConfigError as e:
        print(f"sweeplab: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
