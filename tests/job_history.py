"""A job history of realistic rows, inserted in one statement: the reliability suite and the SSE
benchmark use it to put a server in front of a month of use.

Each row is shaped like a finished 20-episode random search with walk-forward validation (its
config, step details, best parameters and result copied from a real one): about 3.3 kB as the
stream sends it. Rows are created a few minutes apart going back from now, newest last.
`add_history` also vacuums and analyses the table, as autovacuum has long done on a database in
use: without statistics, the planner sorts 20,000 wide rows for a filtered list page (77 ms
instead of 15 ms, measured).
"""

from __future__ import annotations

from typing import Any

import psycopg2
from psycopg2.extras import Json

PARAMS = {"rr_ratio": 2.0, "pierce_depth": 0.3, "max_hold_candles": 282, "reversal_candles": 2,
          "key_level_lookback": 190, "volume_spike_threshold": 3.5}
CONFIG = {"end": None, "seed": 1, "start": None, "n_jobs": 1, "fee_rate": 0.0005, "patience": None,
          "slippage": 0.0, "min_trades": 5, "param_space": {}, "n_iterations": 20, "target_score": None,
          "position_size_pct": 1.0,
          "validation": {"enabled": True, "gap_days": 0.0, "candidates": 5, "test_window_days": 30.0,
                         "train_window_days": 90.0}}
RESULT = {
    "data": {"end": "2024-05-18T21:15:00+00:00", "start": "2024-01-01T00:00:00+00:00", "candles": 40000},
    "best_score": -1.085653306894233,
    "validation": {
        "folds": [{"fold": 1, "params": {**PARAMS, "rr_ratio": 1.0, "pierce_depth": 0.25},
                   "test_end": "2024-04-30T00:00:00+00:00", "train_end": "2024-03-31T00:00:00+00:00",
                   "test_start": "2024-03-31T00:00:00+00:00", "train_start": "2024-01-01T00:00:00+00:00",
                   "test_candles": 8640, "train_candles": 25920, "in_sample_score": -1.9992404481152752,
                   "out_of_sample_score": -0.006228449532184869, "out_of_sample_return": -0.0004908100757846645,
                   "out_of_sample_trades": 10}],
        "gap_days": 0.0, "candidates": 5, "degradation": -1.9930119985830903, "scored_folds": 1,
        "test_window_days": 30.0, "train_window_days": 90.0, "mean_in_sample_score": -1.9992404481152752,
        "std_out_of_sample_score": 0.0, "mean_out_of_sample_score": -0.006228449532184869},
    "best_params": PARAMS, "evaluations": 20, "stop_reason": None,
    "best_metrics": {"sqn": -0.6954208341471639, "calmar": -1.279006476998462, "sharpe": -1.085653306894233,
                     "sortino": -1.456938900600571, "exposure": 0.090575, "n_trades": 44,
                     "win_rate": 0.29545454545454547, "max_drawdown": 0.15840380627459294,
                     "total_return": -0.08254002861279863, "profit_factor": 0.7609354462879072,
                     "avg_trade_return": -0.0018113557439493058},
    "best_iteration": 10, "total_episodes": 20, "optimizer_seconds": 0.0,
}


def insert_finished_jobs(conn: Any, n: int, minutes_apart: float = 2.0, symbol: str = "SYN") -> None:
    """Insert `n` succeeded jobs in one INSERT … SELECT (about 1 s per 10,000 here); commit is the caller's."""
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO training_jobs
                   (job_name, status, strategy, symbol, timeframe, optimizer, objective, config, progress,
                    current_stage, step_number, total_steps, step_percentage, step_details, current_episode,
                    total_episodes, current_score, best_score, best_params, candles_processed, total_candles,
                    backtest_stage, eta_seconds, created_at, started_at, finished_at, estimated_completion,
                    result, rq_job_id, worker_name, attempts)
               SELECT 'history ' || i, 'succeeded', 'liquidity_sweep', %(symbol)s, '5m', 'random', 'sharpe',
                      %(config)s, 100, 'Save Configuration', 4, 4, 100, %(details)s, 20, 20,
                      -2.7655943688988773, -1.085653306894233, %(params)s, 17280, 17280, 'trades', 0,
                      at, at + interval '40 s', at + interval '95 s', at + interval '95 s', %(result)s,
                      'trad-' || i || '-25f1a7f2231b', 'worker-1', 1
                 FROM generate_series(1, %(n)s) AS i,
                      LATERAL (SELECT now() - (%(n)s - i + 1) * make_interval(secs => %(apart)s)) AS t(at)""",
            {"symbol": symbol, "config": Json(CONFIG), "details": Json({"params": PARAMS}),
             "params": Json(PARAMS), "result": Json(RESULT), "n": n, "apart": minutes_apart * 60})


def add_history(database_url: str, n: int) -> int:
    """Insert `n` succeeded jobs, then VACUUM ANALYZE; returns the log's newest version."""
    conn = psycopg2.connect(database_url)
    try:
        conn.autocommit = True
        insert_finished_jobs(conn, n)
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE training_jobs")
            cur.execute("SELECT GREATEST((SELECT max(version) FROM training_jobs), "
                        "(SELECT max(version) FROM training_job_deletions), 0)")
            return int(cur.fetchone()[0])
    finally:
        conn.close()
