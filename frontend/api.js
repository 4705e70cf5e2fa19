// The server: JSON over fetch (Bearer token when one is stored) and the job EventSource.

const TOKEN_KEY = "trad.apiToken";
const REOPEN_MS = 3000;
let unauthorized = () => {};

/** An error response in the API's shape, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, error, body = null) {
    super(error?.message || `request failed (${status})`);
    this.body = body;
    this.status = status;
    this.code = error?.code || (status ? `HTTP_${status}` : "NETWORK_ERROR");
    this.details = Array.isArray(error?.details) ? error.details : [];
    this.traceId = error?.trace_id || null;
  }
}

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
  shareTokenWithLinks();
}

/**
 * Pages the browser opens by itself (the /rq link) cannot send a header: the token also
 * travels as the `trad_token` cookie, same-site only (no other site's page can use it).
 */
export function shareTokenWithLinks() {
  const token = getToken();
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = token
    ? `trad_token=${encodeURIComponent(token)}; Path=/; SameSite=Strict${secure}`
    : "trad_token=; Path=/; Max-Age=0; SameSite=Strict";
}

/** Called (once per request) when the server answers 401: the page asks for a token. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

function withQuery(path, query) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  return url.pathname + url.search;
}

/** fetch a JSON endpoint; resolves to the parsed body (null for 204), rejects with ApiError. */
export async function api(path, { method = "GET", query, body } = {}) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(withQuery(path, query), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { message: "The server is not reachable." });
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401) unauthorized();
    throw new ApiError(response.status, data?.error, data);
  }
  return data;
}

/**
 * One EventSource on a job stream. The browser reconnects by itself (the server's `retry:`)
 * and sends Last-Event-ID, so nothing is missed; only if the browser gives up for good
 * (readyState CLOSED) is a new one opened, from the last event id seen. When the server cannot
 * replay what was missed (the client was away too long), it sends `reset` instead: the page
 * reloads what it shows by REST, and the stream goes on from the reset's id.
 * handlers: {job(row), deleted({id}), reset({version, reason}), state("connecting" | "live" | "reconnecting")}.
 */
export function openJobStream(path, handlers) {
  let source = null;
  let lastEventId = "";
  let reopenTimer = null;
  let closed = false;

  const remember = (event) => { if (event.lastEventId) lastEventId = event.lastEventId; };
  const parse = (event) => { try { return JSON.parse(event.data); } catch { return null; } };

  function open() {
    const query = { token: getToken() || undefined, last_event_id: lastEventId || undefined };
    source = new EventSource(withQuery(path, query));
    handlers.state?.(lastEventId ? "reconnecting" : "connecting");
    source.onopen = () => handlers.state?.("live");
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        handlers.state?.("reconnecting");
        source.close();
        if (!closed) reopenTimer = setTimeout(open, REOPEN_MS);
      } else {
        handlers.state?.("reconnecting");
      }
    };
    source.addEventListener("job", (event) => {
      remember(event);
      const row = parse(event);
      if (row) handlers.job?.(row);
    });
    source.addEventListener("deleted", (event) => {
      remember(event);
      const gone = parse(event);
      if (gone) handlers.deleted?.(gone);
    });
    source.addEventListener("reset", (event) => {
      remember(event);
      handlers.reset?.(parse(event) || {});
    });
  }

  open();
  return {
    close() {
      closed = true;
      clearTimeout(reopenTimer);
      source?.close();
    },
  };
}
