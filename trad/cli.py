"""The `trad` command: one subcommand per thing a user wants to do."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, Any

import click

from trad.config import DEMO_DIR, get_settings
from trad.errors import TradError, first_line


def _database():
    from trad.db import Database

    return Database(get_settings().database_url)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trad")
@click.option("--demo", "demo_dir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Use the servers of the `trad demo` running on DIR (its --data-dir, or the folder holding "
                   "its .trad), whatever the environment says. Without it, a demo running in ./.trad is used "
                   "when none of TRAD_DATABASE_URL, TRAD_REDIS_URL and DB_* is set.")
def cli(demo_dir: Path | None) -> None:
    """Train trading strategies and watch the training live."""
    if demo_dir is not None:
        from trad.config import use_demo

        use_demo(demo_dir)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the SQL migrations not yet applied (the same files scripts/migrate.sh uses)."""
    from trad.db import upgrade

    applied = upgrade(get_settings().database_url)
    click.echo(f"applied {', '.join(applied)}" if applied else "schema is up to date")


@cli.group()
def data() -> None:
    """Candles: import, synthesise, list."""


@data.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--symbol", required=True, help="Symbol the candles belong to, e.g. BTCUSDT.")
@click.option("--timeframe", required=True, help="Candle length: 1m 5m 15m 30m 1h 4h 1d.")
def data_import(file: Path, symbol: str, timeframe: str) -> None:
    """Import candles from a CSV file (upsert; nothing is written if any row is bad)."""
    from trad.store.candles import import_csv

    started = time.perf_counter()
    written = import_csv(_database(), file, symbol, timeframe)
    click.echo(f"imported {written:,} candles of {symbol} {timeframe} in {time.perf_counter() - started:.2f} s")


@data.command("synth")
@click.option("--symbol", required=True, help="Symbol to store the candles under.")
@click.option("--timeframe", default="5m", show_default=True, help="Candle length.")
@click.option("--candles", "count", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="How many candles.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same candles.")
@click.option("--start", default=None, help="Time of the first candle (ISO date); default 2024-01-01.")
def data_synth(symbol: str, timeframe: str, count: int, seed: int, start: str | None) -> None:
    """Generate deterministic synthetic candles (GBM with volume spikes) and store them."""
    from trad.store.candles import import_synthetic

    started = time.perf_counter()
    written = import_synthetic(_database(), symbol, timeframe, count, seed=seed, start=start)
    click.echo(f"stored {written:,} synthetic candles of {symbol} {timeframe} in {time.perf_counter() - started:.2f} s")


@data.command("list")
def data_list() -> None:
    """Symbols and timeframes with candles."""
    from trad.store.candles import candle_summary

    with _database().connection() as conn:
        rows = candle_summary(conn)
    if not rows:
        click.echo("no candles yet: try `trad data synth --symbol DEMO`")
    for row in rows:
        click.echo(f"{row['symbol']:<12} {row['timeframe']:>4} {row['candles']:>10,}  "
                   f"{row['first']:%Y-%m-%d %H:%M} → {row['last']:%Y-%m-%d %H:%M}")


@cli.command()
@click.option("--host", default=None, help="Address to bind (default TRAD_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default PORT, 8000).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Web processes (each holds its own SSE listener).")
@click.option("--access-log", is_flag=True, help="Log every request.")
def serve(host: str | None, port: int | None, workers: int, access_log: bool) -> None:
    """Run the web app (API, SSE streams, dashboard, /docs, /rq) under gunicorn + gevent."""
    from trad.serving import serve as run_server

    settings = get_settings()
    settings = settings.with_(host=host or settings.host, port=port or settings.port)
    click.echo(f"trad web on http://{settings.host}:{settings.port}/")
    run_server(settings, workers=workers, access_log=access_log)


def preload_training_modules() -> None:
    """Import what every training job needs once, so each forked work horse starts warm."""
    import skopt  # noqa: F401  (scikit-learn comes with it: a second or two to import)

    import trad.training.workflow  # noqa: F401


@cli.command()
@click.option("--name", default=None, help="Worker name (default: host and process id).")
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
@click.option("--backtests-only", is_flag=True,
              help="Serve only ad-hoc backtests (answers them while other workers train).")
def worker(name: str | None, burst: bool, backtests_only: bool) -> None:
    """Run an RQ worker for training jobs and ad-hoc backtests, backtests first (reconciles crashed
    and lost jobs as it goes)."""
    import logging

    from trad.backtest.memory import reuse_freed_memory
    from trad.jobs.backtests import backtest_queue
    from trad.jobs.queue import connect_redis, training_queue
    from trad.jobs.runner import TrainingWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    reuse_freed_memory()  # before any work horse is forked: every backtest runs at one speed
    preload_training_modules()
    connection = connect_redis(settings)
    queues = [backtest_queue(connection, settings)]
    if not backtests_only:
        queues.append(training_queue(connection, settings))
    training_worker = TrainingWorker(queues, connection=connection, name=name, settings=settings)
    training_worker.reconcile()
    training_worker.work(burst=burst, with_scheduler=False, logging_level="INFO")


def _services():
    """The database pool and Redis client of the configured services."""
    from trad.jobs.queue import connect_redis

    settings = get_settings()
    return _database(), connect_redis(settings), settings


@cli.command()
@click.option("--file", "json_file", type=click.File("r"), help="A JSON job request (flags override it).")
@click.option("--strategy", help="liquidity_sweep, sma_crossover or rsi_reversion.")
@click.option("--symbol")
@click.option("--timeframe", help="1m 5m 15m 30m 1h 4h 1d.")
@click.option("--optimizer", type=click.Choice(["grid", "random", "bayesian"]), help="Default bayesian.")
@click.option("--iterations", "n_iterations", type=int, help="Evaluations (random/bayesian).")
@click.option("--objective")
@click.option("--n-jobs", type=int, help="Processes evaluating in parallel.")
@click.option("--seed", type=int)
@click.option("--name", "job_name")
@click.option("--param", "params", multiple=True, help="NAME=VALUE, NAME=LOW:HIGH[:STEP] or NAME=A,B,C.")
@click.option("--no-validation", is_flag=True, help="Skip walk-forward validation.")
def train(json_file: IO[str] | None, params: tuple[str, ...], no_validation: bool, **flags: Any) -> None:
    """Start a training job; prints its id. Strategy, symbol and timeframe are needed (flags or
    --file); every missing or invalid field is named at once."""
    from trad.jobs.control import create_job
    from trad.jobs.requests import JobRequest
    from trad.train_input import job_file, param_override, validated
    from trad.training.batch import DEFAULT_OPTIMIZER  # as train-all's; the API asks for one

    body = job_file(json_file) if json_file else {}
    body.update({k: v for k, v in flags.items() if v is not None})
    body.setdefault("optimizer", DEFAULT_OPTIMIZER)
    if params:
        body["param_space"] = {**body.get("param_space", {}), **dict(map(param_override, params))}
    if no_validation:
        body["validation"] = {**body.get("validation", {}), "enabled": False}
    row = create_job(*_services(), validated(JobRequest, body))
    click.echo(row["id"])


@cli.command()
@click.option("--status", type=click.Choice(["queued", "running", "succeeded", "failed", "stopped"]))
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
def jobs(status: str | None, limit: int) -> None:
    """List training jobs, newest first."""
    from trad.store.jobs import list_jobs

    with _database().connection() as conn:
        rows, total = list_jobs(conn, status=status, limit=limit)
    for row in rows:
        best = "–" if row["best_score"] is None else f"{row['best_score']:.4f}"
        click.echo(f"{row['id']:>6}  {row['status']:<9} {row['progress']:6.1f}%  best {best:>8}  "
                   f"{row['strategy']} {row['symbol']} {row['timeframe']} {row['optimizer']}  {row['job_name']}")
    click.echo(f"{len(rows)} of {total} jobs")


@cli.command()
@click.argument("job_id", type=int)
def stop(job_id: int) -> None:
    """Ask a job to stop (a queued job stops at once)."""
    from trad.jobs.control import stop_job

    row = stop_job(*_services(), job_id)
    click.echo(f"job {job_id}: {'stopped' if row['status'] == 'stopped' else 'stop requested'}")


@cli.command()
@click.argument("job_id", type=int)
@click.option("--url", default=None,
              help="Web app to stream from (default TRAD_URL, the running demo's, or http://TRAD_HOST:PORT).")
@click.option("--reconnect-for", type=click.FloatRange(min=0), default=15.0, show_default=True, metavar="SECONDS",
              help="How long to keep reconnecting after the stream drops.")
def watch(job_id: int, url: str | None, reconnect_for: float) -> None:
    """Follow a job live in the terminal until it ends.

    A dropped stream (the web app restarting) is resumed where it stopped. Anything else
    that ends the watch prints one line on stderr. Exit codes:

    \b
      0  the job succeeded
      1  the job failed
      2  usage error
      3  the job was stopped
      4  no such job (or it was deleted)
      5  the web app refused the token (TRAD_API_TOKEN)
      6  the web app does not answer (refused, timed out, error status)
      7  the stream dropped and did not come back within --reconnect-for
    """
    from trad.watch import WatchError, watch_job

    settings = get_settings()
    base = url or settings.web_url or f"http://{settings.host}:{settings.port}"
    try:
        code = watch_job(base, job_id, settings.api_token, reconnect_for=reconnect_for)
    except WatchError as exc:
        click.echo(f"error: {exc.message}", err=True)
        code = exc.exit_code
    sys.exit(code)


@cli.command()
@click.argument("job_id", type=int)
@click.option("--trades-csv", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              metavar="FILE", help="Also write every trade to FILE as CSV.")
def results(job_id: int, trades_csv: Path | None) -> None:
    """The best configuration's backtest of a job (also of a deleted one): metrics and its trades."""
    from trad.results_text import results_text, write_trades_csv

    db = _database()
    click.echo(results_text(db, job_id))
    if trades_csv is not None:
        click.echo(f"wrote {write_trades_csv(db, job_id, trades_csv):,} trades to {trades_csv}")


@cli.command()
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="Keep this many days (default TRAD_RETENTION_DAYS, 30).")
def cleanup(days: int | None) -> None:
    """Delete finished jobs older than the retention period, with their metrics and logs, and the
    deletion records (tombstones) older than it: a stream asked to replay from before them resets."""
    from trad.store.job_log import prune_deletions
    from trad.store.jobs import delete_finished_before

    days = get_settings().retention_days if days is None else days
    with _database().transaction() as conn:
        deleted = delete_finished_before(conn, days)
        pruned = prune_deletions(conn, days)
    click.echo(f"deleted {len(deleted)} jobs older than {days} days (trained configurations kept) "
               f"and {pruned} deletion records")


@cli.command("train-all")
@click.option("--symbol", "symbols", multiple=True,
              help="Train this symbol (repeat); default every symbol with candles of the timeframe.")
@click.option("--strategy", help="Default liquidity_sweep.")
@click.option("--timeframe", help="Default: the timeframe most symbols have candles of.")
@click.option("--optimizer", type=click.Choice(["grid", "random", "bayesian"]), help="Default bayesian.")
@click.option("--iterations", "n_iterations", type=int, help="Evaluations per job (random/bayesian).")
@click.option("--objective")
@click.option("--no-validation", is_flag=True, help="Skip walk-forward validation.")
@click.option("--force", is_flag=True, help="Train symbols already trained on their newest candle too.")
def train_all(symbols: tuple[str, ...], no_validation: bool, force: bool, **flags: Any) -> None:
    """Train every symbol, one job each, skipping those already trained on their newest candle."""
    from trad.jobs.batches import JobTemplate, start_training_batch
    from trad.train_input import validated

    body = {k: v for k, v in flags.items() if v is not None}
    if no_validation:
        body["validation"] = {"enabled": False}
    template = validated(JobTemplate, body)
    started = start_training_batch(*_services(), template, list(symbols) or None, force)
    for job in started["jobs"]:
        click.echo(f"{job['job_id']:>6}  {job['symbol']}")
    click.echo(f"batch {started['batch_id']} ({started['strategy']} {started['timeframe']}): {started['message']}")


@cli.command()
@click.option("--after-current", is_flag=True,
              help="Let the running jobs finish and start no new one (default: stop them now too).")
def cancel(after_current: bool) -> None:
    """Cancel the running batch (train-all): its queued and running jobs stop; exits 1 if none runs."""
    from trad.jobs.batches import cancel_training_batch

    result = cancel_training_batch(*_services(), mode="after_current" if after_current else "now")
    click.echo(result["message"])
    if not result["success"]:
        sys.exit(1)


@cli.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=DEMO_DIR,
              show_default=True, help="Where the embedded servers keep their data, and the logs.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the web app.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Web port (default PORT, 8000).")
@click.option("--quick", is_flag=True, help="A small demo job that ends in seconds (instead of about a minute).")
def demo(data_dir: Path, host: str, port: int | None, quick: bool) -> None:
    """Everything on this machine: embedded PostgreSQL and Redis (unless TRAD_DATABASE_URL and
    TRAD_REDIS_URL are set), sample candles, the web app, a worker and a demo job sized to run
    about a minute here. While it runs, trad commands started in the same directory (or with
    `trad --demo DATA_DIR`) use its servers. Ctrl-C stops it all."""
    from trad.config import Settings
    from trad.demo import run_demo

    settings = Settings.from_env()  # its own servers: never those of a demo already running
    sys.exit(run_demo(data_dir, host=host, port=port or settings.port, quick=quick, settings=settings))


class _NeverRaised(Exception):
    """Stands for the errors of a library the command never imported: none of them can occur."""


def _loaded_error(module: str, name: str) -> type[BaseException]:
    """`module.name` if the command imported `module`, else _NeverRaised.

    Looked up, not imported: `trad serve` must not import redis before gevent patches ssl in
    its web workers (redis.asyncio binds ssl.SSLContext at import, and gevent then warns that
    it cannot patch it)."""
    loaded = sys.modules.get(module)
    return getattr(loaded, name) if loaded is not None else _NeverRaised


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage errors and bad input print one line and exit 2."""
    try:
        cli.main(args=argv, prog_name="trad", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except TradError as exc:
        from trad.errors import InvalidInput, NotFound

        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2 if isinstance(exc, (InvalidInput, NotFound)) else 1)
    except _loaded_error("redis", "RedisError") as exc:
        click.echo(f"error: Redis is not reachable: {exc}", err=True)
        sys.exit(1)
    except _loaded_error("psycopg2", "OperationalError") as exc:
        click.echo(f"error: PostgreSQL is not reachable: {first_line(exc, 'connection failed')}", err=True)
        sys.exit(1)
