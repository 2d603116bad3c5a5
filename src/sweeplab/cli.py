"""The `sweeplab` command. Heavy imports (torch, Lightning, MLflow) wait until a command needs them."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

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
            ("worker", "create or join a sweep's study and run its trials (another shell, machine, SLURM task, pod)")):
        command = commands.add_parser(name, help=help_text, epilog=USAGE_EXAMPLES,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                             help="Hydra overrides: group=option, key=value, +new_key=value")
        command.add_argument("--config-dir", action="append", default=[], metavar="DIR",
                             help="a folder of your own configs (experiment/, model/, sweeps/, ...); repeatable")
        command.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    reproduce = commands.add_parser("reproduce", help="rerun a recorded run (or a sweep's best trial) and compare")
    reproduce.add_argument("run_id", metavar="RUN_ID")
    reproduce.add_argument("--check", action="store_true", help="exit 1 when a final metric differs by more than T")
    reproduce.add_argument("--tolerance", type=float, default=1e-6, metavar="T",
                           help="largest allowed absolute difference (default 1e-6)")
    compare = commands.add_parser("compare", help="the top runs of a sweep or experiment")
    compare.add_argument("target", metavar="TARGET", help="a sweep name, a sweep's parent run id, or an experiment name")
    compare.add_argument("--top", type=int, default=10, metavar="K")
    compare.add_argument("--format", choices=("table", "csv", "json"), default="table")
    compare.add_argument("--plot", metavar="FILE.png", help="also draw the runs as parallel coordinates")
    register = commands.add_parser("register", help="register a run's model (or a sweep's best) as NAME@champion")
    register.add_argument("run_id", metavar="RUN_ID")
    register.add_argument("name", metavar="NAME")
    report = commands.add_parser("report", help="a sweep's one-page HTML report: best trial, plots, learning "
                                 "curves, run links")
    report.add_argument("target", metavar="SWEEP", help="a sweep's parent run id or its study name")
    report.add_argument("--out", metavar="FILE.html", help="where to write it (default: report-<study>.html here)")
    report.add_argument("--storage", metavar="URL",
                        help="the study's storage, when the parent run's record of it hides a password")
    explain = commands.add_parser("explain", help="attribute a run's (or a sweep's best trial's) predictions with "
                                  "Captum; logged to it under explanations/")
    explain.add_argument("run_id", metavar="RUN_ID")
    explain.add_argument("--examples", type=int, default=8, metavar="N", help="the first N test examples (default 8)")
    ui = commands.add_parser("ui", help="the MLflow UI on this store, opened on the latest experiment's runs")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--open", action="store_true", help="also open the printed URL in a web browser")
    dashboard = commands.add_parser("dashboard", help="optuna-dashboard on a sweep's study (pip install 'sweeplab[dashboard]')")
    dashboard.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="sweep=NAME and sweep overrides")
    dashboard.add_argument("--config-dir", action="append", default=[], metavar="DIR")
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8080)
    for command in (reproduce, compare, register, explain, report, ui):
        command.add_argument("--tracking-uri", default="sqlite:///mlruns/mlflow.db", metavar="URI",
                             help="the MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db)")
    return parser


# Library lines that say what sweeplab says in its own words (or that concern nobody): set before the
# libraries are imported, which configure only their root loggers ("mlflow", "optuna").
QUIET_LOGGERS = (
    "mlflow.store.db.utils",     # "Creating initial MLflow database tables..."; sweeplab names its store
    "optuna.storages",           # "A new study created in Journal with name: X"; the sweep's line names its study
    "optuna.study.study",        # "Using an existing study with study_name=..." (two processes creating one)
)


def main(argv: list[str] | None = None) -> int:
    sys.excepthook = _masked_traceback
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may come after options too (`train --print-config a=1 b=2`).
    unknown = [a for a in extra if a.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra and not hasattr(args, "overrides"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = [*getattr(args, "overrides", []), *extra]
    from sweeplab.errors import ConfigError

    try:
        return COMMANDS[args.command](args)
    except ConfigError as e:   # bad input, found before any work starts: one line, exit 2
        print(f"sweeplab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sweeplab: interrupted", file=sys.stderr)
        return 130


def _masked_traceback(kind, error, trace) -> None:
    """An uncaught error's traceback, with the password of any URL in it hidden (driver errors show URLs)."""
    import traceback

    from sweeplab.secrets import hide_passwords
    sys.stderr.write(hide_passwords("".join(traceback.format_exception(kind, error, trace))))


def _train(args) -> int:
    from sweeplab.config import compose_config, to_yaml
    from sweeplab.secrets import hide_passwords

    cfg = compose_config(args.overrides, args.config_dir)
    if args.print_config:
        print(hide_passwords(to_yaml(cfg)), end="")
        from sweeplab.config.model_groups import describe_optimizer_groups
        print(f"# {describe_optimizer_groups(cfg.model)}")   # a YAML comment: the output stays YAML
        return 0
    from sweeplab.config import model_groups
    from sweeplab.experiment import run_experiment
    from sweeplab.explain.run_end import explain_at_end
    result = run_experiment(cfg, overrides=args.overrides, at_end=explain_at_end)
    from sweeplab.tracking import links, store

    uri = store.tracking_uri(cfg.tracking.uri)
    client = store.open_client(uri)
    shown = {name: f"{value:.6g}" for name, value in result.metrics.items()}
    if any(name.startswith("cv/") for name in shown):   # a cross-validation: each metric's mean ± std over folds
        print(f"mean ± std over {cfg.data.folds} folds (each fold: a nested run fold-<k>)")
        shown = {name[3:-5]: f"{value:.6g} ± {result.metrics[name[:-5] + '_std']:.2g}"
                 for name, value in result.metrics.items() if name.startswith("cv/") and name.endswith("_mean")}
    if "train/lr" in shown and "optimizer" not in model_groups.unused_optimizer_groups(cfg.model):
        shown["train/lr"] = _lr_range(cfg, [m.value for m in client.get_metric_history(result.run_id, "train/lr")])
    width = max(map(len, shown), default=0)
    for name in sorted(shown):
        print(f"{name:<{width}}  {shown[name]}")
    print(f"MLflow run {result.run_id} ({result.state})")
    print(links.run_hint(uri, client.get_run(result.run_id).info.experiment_id, result.run_id))
    return 0


def _lr_range(cfg, history: list[float]) -> str:
    """The learning rate as a range when a schedule moved it (`0 to 0.001 (cosine; last 0)`): its last
    value alone, 0 at the end of a cosine schedule, would look like a fault."""
    values = list(history)
    scheduler = str((cfg.get("scheduler") or {}).get("_target_") or "").rpartition(".")[2]
    start = (cfg.get("optimizer") or {}).get("lr")
    if scheduler and isinstance(start, (int, float)):
        values.append(float(start))   # where the schedule starts (cosine) or peaks (one-cycle)
    if not values:
        return "-"
    low, high = min(values), max(values)
    if low == high:
        return f"{high:.6g}"
    return f"{low:.6g} to {high:.6g} ({scheduler or 'scheduled'}; last {history[-1]:.6g})"


def _sweep(args) -> int:
    if args.print_config:
        return _train(args)
    _stop_on_sigterm()
    from sweeplab.sweep.driver import run_sweep
    return run_sweep(args.overrides, args.config_dir)


def _worker(args) -> int:
    if args.print_config:
        return _train(args)
    _stop_on_sigterm()
    # The driver's checks: bad input exits 2 before the study or any run is created.
    from sweeplab.sweep.driver import prepare
    settings, uri = prepare(args.overrides, args.config_dir)
    from sweeplab.sweep.worker.loop import work
    return work(settings, args.overrides, args.config_dir, uri)


def _reporting(command):
    """Commands that read the store: bad input (unknown run, store) is exit 2 and one line."""
    def run(args) -> int:
        from sweeplab.errors import ConfigError
        from sweeplab.tracking import store

        uri = store.tracking_uri(args.tracking_uri)
        store.check_reachable(uri)
        if uri.startswith("sqlite:///") and not os.path.exists(uri[len("sqlite:///"):]):
            raise ConfigError(f"no MLflow store at {uri}; run from the folder holding mlruns/ or pass --tracking-uri")
        return command(args, uri)
    return run


@_reporting
def _reproduce(args, uri: str) -> int:
    from sweeplab.tracking import store

    if store.run_exists(uri, args.run_id) is False:   # a mistyped id is told at once, before MLflow loads
        raise store.no_such_run(args.run_id, uri)
    from sweeplab.reproduce import reproduce
    return reproduce(args.run_id, uri, args.check, args.tolerance)


@_reporting
def _compare(args, uri: str) -> int:
    from sweeplab import compare
    from sweeplab.tracking.store import open_client

    found = compare.find(open_client(uri), args.target)
    columns, table = compare.rows(found, args.top)
    if args.format == "table":
        print(f"{found.title}: {compare.top_phrase(len(table), 'run')} of {len(found.runs)} by {found.metric}")
        print(f"({compare.ORDER_RULE})")
    print(compare.render(columns, table, args.format))
    if args.plot:
        compare.plot(found, columns, table, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


@_reporting
def _register(args, uri: str) -> int:
    from sweeplab.tracking.registry import ALIAS, register
    from sweeplab.tracking.store import open_client

    link = register(open_client(uri), args.run_id, args.name)
    print(f"registered {link} as {args.name}@{ALIAS}; load it with "
          f"mlflow.pyfunc.load_model('models:/{args.name}@{ALIAS}')")
    return 0


@_reporting
def _explain(args, uri: str) -> int:
    from sweeplab.tracking import store

    if store.run_exists(uri, args.run_id) is False:   # a mistyped id is told at once, before MLflow loads
        raise store.no_such_run(args.run_id, uri)
    from sweeplab.explain.command import explain
    return explain(args.run_id, uri, args.examples)


@_reporting
def _report(args, uri: str) -> int:
    from sweeplab.sweep.report import html as report_html
    from sweeplab.sweep.report.data import find_sweep
    from sweeplab.tracking.store import open_client

    client = open_client(uri)
    parent, study = find_sweep(client, args.target, args.storage)
    path = report_html.write(client, parent, study, args.out or f"report-{study.study_name}.html")
    print(f"wrote {path} (sweep {study.study_name}, parent run {parent.info.run_id}); it opens offline in any browser")
    return 0


@_reporting
def _ui(args, uri: str) -> int:
    import signal
    import subprocess
    import webbrowser

    from sweeplab.tracking import links
    from sweeplab.tracking.store import open_client

    base = links.ui_base(uri, args.host, args.port)
    experiment = links.latest_experiment(open_client(uri))
    url = links.experiment_url(base, experiment) if experiment else links.experiments_url(base)
    if not uri.startswith("sqlite:"):
        print(f"runs are on the server {base}: {url}")
        if args.open:
            webbrowser.open(url)
        return 0
    print(f"starting the MLflow UI for {uri}...", flush=True)
    # MLflow's server imports a Starlette module that Starlette has deprecated: a warning per worker
    # process about nothing the user did.
    quiet = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), "ignore:starlette.middleware.wsgi is deprecated"]))
    # One local user needs one server process: `mlflow ui` starts 4 uvicorn workers, its job runner and its
    # huey consumers (15 processes, 28-30 s until /health answers on 2 cores); this starts 2, in 8-10 s.
    env = {**os.environ, "PYTHONWARNINGS": quiet, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return _serve([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", args.host,
                   "--port", str(args.port), "--workers", "1", "--uvicorn-opts", "--no-access-log --log-level warning"], env, f"{base}/health",
                  f"MLflow UI for {uri}: {url} (Ctrl-C stops it)", url if args.open else None)


def _serve(command: list[str], env: dict, health: str, ready: str, open_url: str | None,
           address: Callable[[], str] | None = None) -> int:
    """Run a local server until Ctrl-C: print `ready` (and open `open_url`) once `health` answers. The server
    has a process group of its own, stopped whole with this command, whatever of it is still starting."""
    import signal
    import subprocess
    import webbrowser

    server = subprocess.Popen(command, env=env, start_new_session=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not _answers(health, server):
            print(f"sweeplab: error: the server did not answer at {health} (exit {server.poll()})",
                  file=sys.stderr, flush=True)
            return 1
        print(address() if address else ready, flush=True)
        if open_url:
            webbrowser.open(open_url)
        return server.wait()
    except KeyboardInterrupt:
        os.killpg(server.pid, signal.SIGTERM)   # a server's own way to stop (SIGINT makes uvicorn print a traceback)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        raise
    finally:
        try:
            os.killpg(server.pid, signal.SIGKILL)   # whatever of it is left
        except ProcessLookupError:
            pass


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_on_sigterm() -> None:
    """SIGTERM (kill, a scheduler's stop, `timeout`) stops a sweep or worker as Ctrl-C does: the driver
    stops its workers, and each worker records its trial as interrupted (run again on resume). Python's
    default would end the driver at once and leave its workers training, orphaned."""
    import signal

    signal.signal(signal.SIGTERM, _interrupt)


def _answers(health: str, server, timeout: float = 180) -> bool:
    """Wait until `health` answers (True), or the server exited or took too long (False)."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(health, timeout=2).close()
            return True
        except OSError:
            time.sleep(0.5)
    return False


def _dashboard(args) -> int:
    import shutil

    from sweeplab.config import compose_with_choices
    from sweeplab.errors import ConfigError

    from sweeplab.sweep.settings import read_settings
    settings = read_settings(*compose_with_choices(args.overrides, args.config_dir))
    program = shutil.which("optuna-dashboard", path=os.path.dirname(sys.executable)) or shutil.which("optuna-dashboard")
    if program is None:
        raise ConfigError("optuna-dashboard is not installed: pip install 'sweeplab[dashboard]'")
    base = f"http://{args.host}:{args.port}"
    print(f"starting optuna-dashboard for study {settings.study_name}...", flush=True)

    def study_page() -> str:
        """The study's own page (optuna-dashboard numbers studies by their storage id), or the list of studies."""
        import json
        import urllib.request

        with urllib.request.urlopen(f"{base}/api/studies", timeout=10) as answer:
            found = [s["study_id"] for s in json.load(answer)["study_summaries"]
                     if s["study_name"] == settings.study_name]
        if not found:
            return f"optuna-dashboard: {base}/dashboard (no study {settings.study_name} yet; Ctrl-C stops it)"
        return f"optuna-dashboard for study {settings.study_name}: {base}/dashboard/studies/{found[0]} (Ctrl-C stops it)"

    return _serve([program, settings.storage.url, "--host", args.host, "--port", str(args.port), "--quiet"], dict(os.environ),
                  f"{base}/api/meta", "", None, address=study_page)


COMMANDS = {"train": _train, "sweep": _sweep, "worker": _worker, "reproduce": _reproduce,
            "compare": _compare, "register": _register, "report": _report, "explain": _explain, "ui": _ui,
            "dashboard": _dashboard}


if __name__ == "__main__":
    sys.exit(main())
