// The dashboard: wires the components to the API, the job stream and the address (#/jobs/<id>).

import { api, getToken, onUnauthorized, openJobStream, setToken, shareTokenWithLinks } from "./api.js";
import { BacktestPage } from "./backtest-page.js";
import { BatchPanel } from "./batch-panel.js";
import { ConfigurationsPage } from "./configurations.js";
import { h, replaceChildren } from "./dom.js";
import { HealthStatus } from "./health-status.js";
import { JobDetail } from "./job-detail.js";
import { JobForm } from "./job-form.js";
import { JobList } from "./job-list.js";
import { LiveIndicator } from "./live-indicator.js";
import { askForToken } from "./token-prompt.js";

const $ = (id) => document.getElementById(id);
const rows = new Map();
const notice = $("notice");
let noticeTimer = null;
let stream = null;

function showNotice(error) {
  if (error?.status === 401) return;
  clearTimeout(noticeTimer);
  replaceChildren(notice, h("span", {}, error?.message || String(error)),
    h("button", { type: "button", class: "link", onclick: () => { notice.hidden = true; } }, "Dismiss"));
  notice.hidden = false;
  noticeTimer = setTimeout(() => { notice.hidden = true; }, 10000);
}

const list = new JobList($("job-list"), { rows, onError: showNotice });
const detail = new JobDetail($("job-detail"), { onRow: acceptRow, onDeleted: forgetJob, onError: showNotice });
const form = new JobForm($("job-form"), { onCreated: acceptRow });
const batch = new BatchPanel($("batch-panel"), { onError: showNotice });
const live = new LiveIndicator($("live"));
const health = new HealthStatus($("health"));
const configurations = new ConfigurationsPage($("configurations-view"));
const backtestPage = new BacktestPage($("backtest-view"));

/** A row from anywhere (stream, REST answer): an older version than the one known is ignored. */
function acceptRow(row) {
  const known = rows.get(row.id);
  const newest = known && known.version > row.version ? known : row;
  rows.set(newest.id, newest);
  list.applyRow(newest);
  detail.applyRow(newest);
  if (newest.batch_id && newest === row) batch.nudge();
}

function forgetJob(id) {
  rows.delete(id);
  list.removeJob(id);
  if (detail.id === id) {
    location.hash = "#/";
    showNotice({ message: `Job #${id} was deleted.` });
  }
}

/** The trained configurations (#/configurations) and a stored backtest (#/backtests/<id>). */
function routeResults() {
  const onList = location.hash === "#/configurations";
  const backtest = location.hash.match(/^#\/backtests\/(\d+)$/);
  $("configurations-view").hidden = !onList;
  $("backtest-view").hidden = !backtest;
  if (onList) {
    configurations.load();
    document.title = "Trained configurations · trad";
  }
  if (backtest) {
    backtestPage.open(Number(backtest[1]));
    document.title = `Backtest #${backtest[1]} · trad`;
  } else backtestPage.close();
  return onList || Boolean(backtest);
}

function route() {
  const match = location.hash.match(/^#\/jobs\/(\d+)$/);
  const results = routeResults();
  $("list-view").hidden = Boolean(match) || results;
  $("detail-view").hidden = !match;
  if (results) detail.close();
  else if (match) {
    const id = Number(match[1]);
    if (detail.id !== id) detail.open(id);
    document.title = `Job #${id} · trad`;
    $("detail-title")?.focus({ preventScroll: false });
    window.scrollTo(0, 0);
  } else {
    detail.close();
    document.title = "trad · training dashboard";
  }
}

/** The stream could not replay what was missed: forget every row and reload the page's by REST. */
async function reloadAfterReset() {
  rows.clear();
  list.load();
  const id = detail.id;
  if (!id) return;
  try {
    const row = await api(`/api/v1/training-jobs/${id}`);
    if (detail.id === id) acceptRow(row);
  } catch (error) {
    if (error.status === 404) forgetJob(id);
  }
}

function openStream() {
  stream?.close();
  stream = openJobStream("/api/v1/training-jobs/stream", {
    job: acceptRow,
    deleted: ({ id }) => forgetJob(id),
    reset: reloadAfterReset,
    state: (state) => {
      live.set(state);
      if (state !== "live") return;
      health.refresh();
      if (formsLoaded) refreshSymbols();
      else loadForms();
    },
  });
}

let formsLoaded = false;
let formsLoading = null;

/** The forms need the strategies and symbols; tried again each time the stream is back. */
function loadForms() {
  formsLoading ||= Promise.all([api("/api/v1/strategies"), api("/api/v1/training/symbols")])
    .then(([catalog, symbols]) => {
      form.load(catalog, symbols.symbols);
      formsLoaded = true;
      return batch.load(catalog, symbols.symbols);
    })
    .catch(showNotice)
    .finally(() => { formsLoading = null; });
  return formsLoading;
}

/** Candles may have been added since (`trad data synth`): offer the symbols again. */
async function refreshSymbols() {
  if (!formsLoaded) return;
  try {
    const { symbols } = await api("/api/v1/training/symbols");
    form.setSymbols(symbols);
    batch.setSymbols(symbols);
  } catch {
    // the stream's indicator already says when the server is away
  }
}

function start() {
  shareTokenWithLinks();
  openStream();
  route();
  list.load();
  loadForms();
}

let asking = null;
onUnauthorized(() => {
  if (asking) return;
  stream?.close();
  live.set("locked");
  asking = askForToken(getToken()
    ? "The stored access token was refused. Enter the server's TRAD_API_TOKEN."
    : "This server requires an access token (TRAD_API_TOKEN).").then((saved) => {
    asking = null;
    if (saved) start();
  });
});

$("token-button").addEventListener("click", async () => {
  if (await askForToken("Change or clear the access token sent to the server.")) start();
});
$("forget-token").addEventListener("click", () => {
  setToken("");
  start();
});

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    detail.resize();
    backtestPage.resize();
  }, 150);
});
window.addEventListener("hashchange", route);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refreshSymbols();
});
setInterval(() => {
  list.tick();
  detail.tick();
}, 1000);

start();
