"""What training produced, to look at: trained configurations, stored backtests (the winner's
and ad-hoc ones, with their trades and the candles for the chart), the shape of a search.

Everything here reads stored rows; the one route that computes, POST /api/v1/backtests, has a
worker do it (trad.jobs.backtests), so no request here holds the web process's CPU for long.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from trad.api.result_schemas import (BacktestPath, BacktestQuery, BacktestView, CandleQuery, CandleWindow,
                                     ConfigurationPage, ConfigurationQuery, SearchAnalysis)
from trad.api.schemas import COMMON_ERRORS, JobPath, errors, shaped
from trad.api.services import services
from trad.errors import InvalidInput, NotFound
from trad.jobs import control
from trad.jobs.backtests import BacktestRequest, request_backtest
from trad.store import backtests as backtest_store
from trad.store.configs import list_configurations
from trad.training.review import analysis_of_job, candle_window, configuration_items, saved_backtest_id

bp = APIBlueprint("results", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="results")],
                  abp_security=[{"bearer": []}], abp_responses=COMMON_ERRORS)

CSV_HEADERS = "text/csv; charset=utf-8"


@bp.get("/trained-configurations", responses={200: ConfigurationPage})
def list_trained_configurations(query: ConfigurationQuery) -> dict[str, Any]:
    """Saved winners, newest first, with their walk-forward summary and the candles they were trained on."""
    with services().db.connection() as conn:
        rows, total = list_configurations(conn, symbol=query.symbol, strategy=query.strategy,
                                          timeframe=query.timeframe, offset=query.rows[0],
                                          limit=query.rows[1])
    return shaped(ConfigurationPage, {"items": configuration_items(rows),
                                      "meta": query.meta(total)})


@bp.get("/training-jobs/<int:job_id>/backtest", responses={200: BacktestView, **errors(404, 409)})
def job_backtest(path: JobPath, query: BacktestQuery) -> Response | dict[str, Any]:
    """The best configuration's backtest on the job's candles.

    Stored when the job saved its configuration, so it outlives the job: metrics, equity and
    drawdown, the out-of-sample segment of every fold, a page of trades (`fold` picks the list;
    `format=csv` sends all of it as a file). 409 while the job has saved none.
    """
    return _backtest_response(saved_backtest_id(services().db, path.job_id), query)


@bp.get("/backtests/<int:backtest_id>", responses={200: BacktestView, **errors(404)})
def get_backtest(path: BacktestPath, query: BacktestQuery) -> Response | dict[str, Any]:
    """A stored backtest: a trained configuration's (its job may be gone) or an ad-hoc one (kept a day)."""
    return _backtest_response(path.backtest_id, query)


@bp.post("/backtests", responses={201: BacktestView, **errors(400, 413, 415, 429)})
def create_backtest(body: BacktestRequest) -> tuple[Response | dict[str, Any], int, dict[str, str]]:
    """Backtest one configuration now, in a worker.

    The web process never runs it: 422 beyond TRAD_BACKTEST_MAX_CANDLES candles, 429 when
    TRAD_BACKTEST_MAX_PENDING are already waiting, 503 when no worker finishes it within
    TRAD_BACKTEST_WAIT seconds. Answers like GET /backtests/{id}; kept a day.
    """
    svc = services()
    backtest_id = request_backtest(svc.db, svc.redis, svc.settings, body)
    answer = _backtest_response(backtest_id, BacktestQuery())
    return answer, 201, {"Location": f"{bp.url_prefix}/backtests/{backtest_id}"}


@bp.get("/backtests/<int:backtest_id>/candles", responses={200: CandleWindow, **errors(404)})
def backtest_candles(path: BacktestPath, query: CandleQuery) -> dict[str, Any]:
    """A range of the backtest's candles as bars, with the trades open then.

    At most `max_bars` bars between `start` and `end`: the candles themselves, or merged when the
    range holds more. What the chart draws as it zooms and pans.
    """
    with services().db.connection() as conn:
        backtest = backtest_store.get_backtest(conn, path.backtest_id, overview=True)
        if backtest is None:
            raise NotFound(f"backtest {path.backtest_id} does not exist")
        window = candle_window(conn, backtest, query.start, query.end, query.max_bars)
    return shaped(CandleWindow, window)


@bp.get("/training-jobs/<int:job_id>/analysis", responses={200: SearchAnalysis, **errors(404)})
def job_analysis(path: JobPath) -> dict[str, Any]:
    """The shape of the job's search, from its recorded evaluations.

    Per parameter the score against its value (slices), each parameter's share of the score's
    variance (importance), the two most important as a score grid, and a sample of evaluations.
    Grows while the job runs.
    """
    db = services().db
    row = control.get_job_or_404(db, path.job_id)
    return shaped(SearchAnalysis, analysis_of_job(db, row))


def _backtest_response(backtest_id: int, query: BacktestQuery) -> Response | dict[str, Any]:
    """A stored backtest with one page of trades, or every trade of the chosen list as CSV."""
    db = services().db
    with db.connection() as conn:
        backtest = backtest_store.get_backtest(conn, backtest_id)
        if backtest is None:
            raise NotFound(f"backtest {backtest_id} does not exist")
        folds = [fold["fold"] for fold in backtest["folds"]]
        if query.fold and query.fold not in folds:
            raise InvalidInput.field("fold", f"backtest {backtest_id} has no fold {query.fold}; "
                                             + (f"its folds are {folds[0]}–{folds[-1]}" if folds else "it has none"))
        if query.format == "csv":
            name = f"backtest-{backtest_id}-trades" + (f"-fold-{query.fold}" if query.fold else "") + ".csv"
            return Response(backtest_store.trades_csv(db, backtest_id, query.fold), mimetype=CSV_HEADERS,
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
        total = backtest_store.count_trades(conn, backtest_id, query.fold)
        items = backtest_store.trade_page(conn, backtest_id, query.fold, *query.rows)
    trades = {"fold": query.fold, "items": items, "meta": query.meta(total)}
    return shaped(BacktestView, {**backtest, "start": backtest["data_start"], "end": backtest["data_end"],
                                 "trades": trades})
