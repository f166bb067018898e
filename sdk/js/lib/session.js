// One API session: a WebSocket to a node's /v1/ws speaking docs/api.md (JSON requests with
// ids, answers matched by id, notifications), and its resumption after a drop.
//
// A server session joins at most one room, so each Router owns one Session. When the
// socket drops after the room was joined, the session reconnects (the same URL first, then
// the next ones of `urls`) and sends router.join {roomId, resumeToken} before anything else:
// the node then hands every transport, producer and consumer of the old session to the new
// one. Requests that were in flight on the dropped socket fail with ConnectionError
// 'connection_lost' (the server may or may not have run them); requests made while
// reconnecting wait and are sent once resumed. When the grace period ends without a
// resume, or the node answers that the token is unknown, the session is lost: waiting
// requests fail with 'session_lost' and 'lost' is emitted (the Router closes its objects).
import { EventEmitter } from 'node:events';
import { ConnectionError, MafaldaError, UnauthorizedError, fromServer } from './errors.js';

let wsImplPromise = null;
async function defaultWebSocket() {
  // `ws` first: Node 20 has no global WebSocket without a flag; a runtime that has one
  // (Node 22, Deno, Bun) works without the dependency installed.
  wsImplPromise ||= import('ws').then((m) => m.default || m.WebSocket).catch(() => {
    if (typeof globalThis.WebSocket === 'function') return globalThis.WebSocket;
    throw new MafaldaError('no WebSocket implementation: install the "ws" package', 'unsupported');
  });
  return wsImplPromise;
}

// ws://host:port -> ws://host:port/v1/ws?token=...; http(s) URLs map to ws(s).
export function apiUrl(url, token) {
  let u;
  try {
    u = new URL(url);
  } catch (e) {
    throw new TypeError(`invalid url '${url}'`);
  }
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`url '${url}' is not ws(s):// or http(s)://`);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/ws';
  if (token) u.searchParams.set('token', token);
  return u.toString();
}

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms).unref?.(); });

export class Session extends EventEmitter {
  // options: {urls: [string], token, WebSocket?, graceMs, requestTimeoutMs, heartbeatMs,
  //           connectTimeoutMs}
  constructor(options) {
    super();
    this._urls = options.urls;
    this._urlIndex = 0;
    this._token = options.token;
    this._WebSocket = options.WebSocket || null;
    this._graceMs = options.graceMs ?? 3000;
    this._requestTimeoutMs = options.requestTimeoutMs ?? 30000;
    this._heartbeatMs = options.heartbeatMs ?? 5000;
    this._connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this._ws = null;
    this._nextId = 1;
    this._inflight = new Map(); // id -> {resolve, reject, method, timer}
    this._queue = []; // requests made while reconnecting: {method, data, resolve, reject}
    this.state = 'new'; // new | open | reconnecting | closed
    this.roomId = null;
    this.resumeToken = null;
    this._heartbeat = null;
    this._pingPending = false;
    this._refused = null; // the server's 'unauthorized' on the current socket
  }

  get url() { return this._urls[this._urlIndex]; }

  // Opens the first connection; rejects (UnauthorizedError, ConnectionError) when no URL
  // accepts it. A system.ping proves the token was accepted.
  async open() {
    let lastErr;
    for (let i = 0; i < this._urls.length; i++) {
      this._urlIndex = i;
      try {
        await this._connect(this.url);
        await this._sendNow('system.ping', {});
        this.state = 'open';
        this._startHeartbeat();
        return;
      } catch (e) {
        lastErr = e;
        this._dropSocket();
        if (e instanceof UnauthorizedError) break; // same secret everywhere: no point
      }
    }
    this.state = 'closed';
    throw lastErr;
  }

  // Sends a request; resolves with the answer's data. Waits while reconnecting.
  request(method, data = {}) {
    if (this.state === 'closed') {
      return Promise.reject(new ConnectionError(`${method}: the session is closed`, 'session_lost', method));
    }
    if (this.state === 'reconnecting') {
      return new Promise((resolve, reject) => this._queue.push({ method, data, resolve, reject }));
    }
    return this._sendNow(method, data);
  }

  close() {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this._stopHeartbeat();
    const err = (m) => new ConnectionError(`${m}: the session was closed`, 'session_lost', m);
    this._failAll(err);
    this._dropSocket();
    this.emit('close');
  }

  // ---------------------------------------------------------------- internals

  _sendNow(method, data) {
    return new Promise((resolve, reject) => {
      const ws = this._ws;
      // The refusal can arrive before the first request is sent (with the upgrade answer):
      // the socket is still open then, but nothing sent on it will be answered.
      if (this._refused) return reject(this._refused);
      if (!ws || ws.readyState !== 1) {
        reject(new ConnectionError(`${method}: not connected`, 'connection_lost', method));
        return;
      }
      const id = this._nextId++;
      const timer = this._requestTimeoutMs > 0
        ? setTimeout(() => {
          if (!this._inflight.delete(id)) return;
          reject(new MafaldaError(`${method}: no answer within ${this._requestTimeoutMs} ms`, 'timeout', method));
        }, this._requestTimeoutMs)
        : null;
      timer?.unref?.();
      this._inflight.set(id, { resolve, reject, method, timer });
      try {
        ws.send(JSON.stringify({ id, method, data }));
      } catch (e) {
        this._inflight.delete(id);
        if (timer) clearTimeout(timer);
        reject(new ConnectionError(`${method}: send failed: ${e.message}`, 'connection_lost', method));
      }
    });
  }

  async _connect(url) {
    const WS = this._WebSocket || await defaultWebSocket();
    const ws = new WS(apiUrl(url, this._token)); // no subprotocol: nng answers 400 to one
    this._ws = ws;
    this._refused = null;
    // Messages may arrive in the same chunk as the upgrade answer (a refused token's error
    // comes at once): listen before 'open' resolves.
    ws.onmessage = (ev) => this._onMessage(ev.data);
    let opened = false;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new ConnectionError(`connecting to ${url} timed out`, 'connection_lost'));
        try { ws.close(); } catch (e) { /* ignore */ }
      }, this._connectTimeoutMs);
      ws.onopen = () => { clearTimeout(timer); opened = true; resolve(); };
      ws.onerror = (ev) => {
        if (opened) return; // onclose follows
        clearTimeout(timer);
        reject(new ConnectionError(`cannot connect to ${url}: ${ev?.message || ev?.error?.message || 'WebSocket error'}`, 'connection_lost'));
      };
      ws.onclose = (ev) => {
        if (opened) {
          this._onSocketClosed(ws);
          return;
        }
        clearTimeout(timer);
        reject(this._refused || new ConnectionError(`connection to ${url} closed (code ${ev?.code})`, 'connection_lost'));
      };
    });
  }

  _onMessage(raw) {
    let msg;
    try {
      msg = JSON.parse(typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8'));
    } catch (e) {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (typeof msg.event === 'string') {
      this.emit('notification', msg.event, msg.target, msg.data || {});
      return;
    }
    if (msg.id === null || msg.id === undefined) {
      // id null: the server could not read a request's id, or refused the token (then it
      // closes the connection). Either way no pending answer can be matched: the refusal
      // fails every in-flight request with its code.
      if (msg.error && msg.error.code === 'unauthorized') {
        this._refused = fromServer('connect', msg.error);
        this._failInflight((m) => fromServer(m, msg.error));
      }
      this.emit('servererror', msg.error);
      return;
    }
    const p = this._inflight.get(msg.id);
    if (!p) return;
    this._inflight.delete(msg.id);
    if (p.timer) clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg.data || {});
    else p.reject(fromServer(p.method, msg.error));
  }

  _failInflight(makeErr) {
    const list = [...this._inflight.values()];
    this._inflight.clear();
    for (const p of list) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(makeErr(p.method));
    }
  }

  _failAll(makeErr) {
    this._failInflight(makeErr);
    const q = this._queue;
    this._queue = [];
    for (const r of q) r.reject(makeErr(r.method));
  }

  _dropSocket() {
    const ws = this._ws;
    this._ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    // ws emits 'error' when a connecting socket is terminated; without a listener that
    // would be an uncaught exception
    ws.onerror = () => {};
    try {
      if (typeof ws.terminate === 'function') ws.terminate();
      else ws.close();
    } catch (e) { /* already closed */ }
  }

  _onSocketClosed(ws) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._stopHeartbeat();
    this._failInflight((m) => this._refused || new ConnectionError(
      `${m}: the connection to ${this.url} dropped while the request was in flight (it may or may not have run)`,
      'connection_lost', m));
    if (this.state !== 'open') return;
    this.state = 'reconnecting';
    this.emit('disconnect');
    this._reconnect().catch(() => {});
  }

  async _reconnect() {
    const deadline = Date.now() + this._graceMs;
    const home = this._urlIndex;
    let delay = 50;
    let attempt = 0;
    let reason = 'no node could be reached';
    while (this.state === 'reconnecting' && Date.now() < deadline) {
      // Same URL first, then round the list.
      const idx = (home + attempt) % this._urls.length;
      attempt++;
      try {
        this._urlIndex = idx;
        await this._connect(this._urls[idx]);
        if (this.state !== 'reconnecting') { this._dropSocket(); return; }
        if (this.roomId) {
          const res = await this._sendNow('router.join', { roomId: this.roomId, resumeToken: this.resumeToken });
          this.resumeToken = res.resumeToken || this.resumeToken;
          this.emit('resumed', res);
        } else {
          await this._sendNow('system.ping', {});
        }
        if (this.state !== 'reconnecting') { this._dropSocket(); return; }
        this.state = 'open';
        this._startHeartbeat();
        const q = this._queue;
        this._queue = [];
        for (const r of q) this._sendNow(r.method, r.data).then(r.resolve, r.reject);
        this.emit('reconnect', { url: this.url });
        return;
      } catch (e) {
        this._dropSocket();
        reason = e.message;
        // The node that held the session says the token is gone: nothing to wait for.
        // (Another node not knowing it proves nothing: tokens are per node.)
        if (e.code === 'not_found' && idx === home) break;
        if (e instanceof UnauthorizedError) break;
      }
      if (attempt % this._urls.length === 0) {
        await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
        delay = Math.min(delay * 2, 500);
      }
    }
    if (this.state !== 'reconnecting') return;
    this._lost(`could not resume the session within ${this._graceMs} ms: ${reason}`);
  }

  _lost(why) {
    this.state = 'closed';
    this._stopHeartbeat();
    this._failAll((m) => new ConnectionError(`${m}: session lost: ${why}`, 'session_lost', m));
    this._dropSocket();
    this.emit('lost', new ConnectionError(`session lost: ${why}`, 'session_lost'));
    this.emit('close');
  }

  // An unanswered ping by the next beat means a dead path the OS has not noticed (no FIN):
  // drop the socket and resume like any other drop.
  _startHeartbeat() {
    this._stopHeartbeat();
    if (!(this._heartbeatMs > 0)) return;
    this._heartbeat = setInterval(() => {
      if (this.state !== 'open' || !this._ws) return;
      if (this._pingPending) {
        const ws = this._ws;
        this._pingPending = false;
        ws.onclose = null;
        try {
          if (typeof ws.terminate === 'function') ws.terminate();
          else ws.close();
        } catch (e) { /* ignore */ }
        this._onSocketClosed(ws);
        return;
      }
      this._pingPending = true;
      this._sendNow('system.ping', {}).then(() => { this._pingPending = false; }, () => {});
    }, this._heartbeatMs);
    this._heartbeat.unref?.();
  }

  _stopHeartbeat() {
    if (this._heartbeat) clearInterval(this._heartbeat);
    this._heartbeat = null;
    this._pingPending = false;
  }
}
