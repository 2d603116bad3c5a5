"""The `sweeplab` command. Heavy imports (torch, Lightning, MLflow) wait until a command needs them."""

from __future__ import annotations

import argparse
import sys

USAGE_EXAMPLES = """\
examples:
  sweeplab train experiment=fashion_cnn trainer.max_epochs=1 data.train_size=3000
  sweeplab train experiment=digits_cnn optimizer=sgd optimizer.lr=0.05
  sweeplab train --print-config experiment=digits_cnn
  sweeplab train --config-dir ./my_conf experiment=my_experiment
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweeplab", description="Hydra-composed Lightning experiments, recorded in MLflow.",
        epilog=USAGE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train = commands.add_parser("train", help="train one experiment and record it as an MLflow run",
                                epilog=USAGE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="Hydra overrides: group=option, key=value, +new_key=value")
    train.add_argument("--config-dir", action="append", default=[], metavar="DIR",
                       help="a folder of your own configs (experiment/, model/, data/, ...); repeatable")
    train.add_argument("--print-config", action="store_true", help="print the composed config and exit")
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
        return {"train": _train}[args.command](args)
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


if __name__ == "__main__":
    sys.exit(main())
