// Workers serving the queue, and whether PostgreSQL and Redis answer (GET /api/v1/health).

import { api } from "./api.js";
import { setText } from "./dom.js";
import { formatInteger } from "./format.js";

const EVERY_MS = 30000;
const SOON_MS = 5000;

export class HealthStatus {
  constructor(el) {
    this.el = el;
    this.timer = null;
  }

  async refresh() {
    clearTimeout(this.timer);
    let health = null;
    try {
      health = await api("/api/v1/health");
    } catch (error) {
      health = error.body?.database ? error.body : null;
    }
    const state = this.render(health);
    this.timer = setTimeout(() => this.refresh(), state === "ok" ? EVERY_MS : SOON_MS);
  }

  render(health) {
    let text = "";
    let state = "ok";
    if (!health) {
      text = "";
    } else if (!health.database.ok || !health.redis.ok) {
      state = "bad";
      text = `${!health.database.ok ? "PostgreSQL" : "Redis"} unreachable`;
    } else if (!health.workers.length) {
      state = "warn";
      text = "No worker running: jobs wait in the queue";
    } else {
      const n = health.workers.length;
      text = `${formatInteger(n)} worker${n === 1 ? "" : "s"}`;
      if (health.queue.length) text += ` · ${formatInteger(health.queue.length)} queued`;
    }
    this.el.dataset.state = state;
    this.el.hidden = !text;
    setText(this.el, text);
    return state;
  }
}
