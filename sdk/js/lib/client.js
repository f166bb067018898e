// The entry points: connect() (Mafalda's own), createWorker() (mediasoup's, for code that
// only uses the router API), and the Client holding one Session per Router.
import { randomUUID } from 'node:crypto';
import { Session } from './session.js';
import { Router, SafeEmitter } from './objects.js';
import { InvalidStateError, MafaldaTypeError, UnsupportedError } from './errors.js';

export const version = '0.1.0';
// mediasoup's module-level observer: 'newworker'.
export const observer = new SafeEmitter();

// The room a join-only token is limited to (its payload is readable without the secret;
// the node checks the signature). null for admin tokens or unreadable ones.
function tokenRoom(token) {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
    const grants = Array.isArray(payload.grants) ? payload.grants : [];
    if (grants.includes('admin')) return null;
    return typeof payload.room === 'string' ? payload.room : null;
  } catch (e) {
    return null;
  }
}

function normalize(options) {
  if (options === null || typeof options !== 'object') throw new MafaldaTypeError('connect() needs an options object');
  const urls = [];
  if (options.url) urls.push(options.url);
  for (const u of options.urls || []) if (!urls.includes(u)) urls.push(u);
  if (urls.length === 0) throw new MafaldaTypeError('connect() needs url or urls');
  for (const u of urls) if (typeof u !== 'string') throw new MafaldaTypeError('every url must be a string');
  if (options.token !== undefined && typeof options.token !== 'string') throw new MafaldaTypeError('token must be a string');
  return {
    urls,
    token: options.token,
    WebSocket: options.WebSocket,
    graceMs: options.graceMs ?? options.resumeGraceMs ?? 3000,
    requestTimeoutMs: options.requestTimeoutMs ?? 30000,
    heartbeatMs: options.heartbeatMs ?? 5000,
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
  };
}

export class Client extends SafeEmitter {
  constructor(options, firstSession) {
    super();
    this._options = options;
    this._spare = firstSession; // opened by connect(), used by the first router
    this._routers = new Set();
    this._closed = false;
    this._observer = new SafeEmitter();
  }

  get closed() { return this._closed; }
  get routers() { return [...this._routers]; }
  get observer() { return this._observer; }

  async _session() {
    if (this._closed) throw new InvalidStateError('client closed', 'closed');
    if (this._spare) {
      const s = this._spare;
      this._spare = null;
      if (s.state === 'open') return s;
      s.close();
    }
    const s = new Session(this._options);
    await s.open();
    return s;
  }

  _adopt(session, joined, appData) {
    const router = new Router(session, joined, appData);
    this._routers.add(router);
    router.observer.once('close', () => this._routers.delete(router));
    session.on('disconnect', () => this.safeEmit('disconnect', router));
    session.on('reconnect', (info) => this.safeEmit('reconnect', router, info));
    session.on('lost', (err) => this.safeEmit('sessionlost', router, err));
    this._observer.safeEmit('newrouter', router);
    return router;
  }

  // A new room (mediasoup's createRouter): `router.create`. roomId defaults to the
  // token's room for a join token, else a random UUID.
  async createRouter({ mediaCodecs, appData, roomId } = {}) {
    if (appData !== undefined && (appData === null || typeof appData !== 'object')) {
      throw new MafaldaTypeError('if given, appData must be an object');
    }
    if (mediaCodecs !== undefined && !Array.isArray(mediaCodecs)) {
      throw new MafaldaTypeError('if given, mediaCodecs must be an array');
    }
    const name = roomId ?? tokenRoom(this._options.token || '') ?? randomUUID();
    const session = await this._session();
    try {
      const data = { roomId: name };
      if (mediaCodecs) data.mediaCodecs = mediaCodecs;
      const joined = await session.request('router.create', data);
      return this._adopt(session, joined, appData || {});
    } catch (e) {
      session.close();
      throw e;
    }
  }

  // The room `roomId`, created with the default codecs when absent: `router.join`.
  async joinRouter(roomId, { appData } = {}) {
    if (roomId && typeof roomId === 'object') roomId = roomId.roomId;
    if (typeof roomId !== 'string' || !roomId) throw new MafaldaTypeError('joinRouter() needs a roomId string');
    const session = await this._session();
    try {
      const joined = await session.request('router.join', { roomId });
      return this._adopt(session, joined, appData || {});
    } catch (e) {
      session.close();
      throw e;
    }
  }

  // Closes every session. The node closes their objects after its grace period; call
  // router.close() or router.leave() first to end them at once.
  close() {
    if (this._closed) return;
    this._closed = true;
    if (this._spare) this._spare.close();
    this._spare = null;
    for (const r of this._routers) r._session.close();
    for (const r of [...this._routers]) r._workerClosed(undefined);
    this._routers.clear();
    this._observer.safeEmit('close');
  }
}

// Opens a session to the first reachable URL (checking the token) and returns a Client.
export async function connect(options) {
  const opts = normalize(options);
  const first = new Session(opts);
  await first.open();
  return new Client(opts, first);
}

// ------------------------------------------------------------------ createWorker shim

export class Worker extends SafeEmitter {
  constructor(client, appData) {
    super();
    this._client = client;
    this._appData = appData;
    this._closed = false;
    this._observer = new SafeEmitter();
    client.observer.on('newrouter', (r) => {
      this._observer.safeEmit('newrouter', r);
    });
  }

  get pid() { return 0; } // no subprocess: the routers live in the cluster
  get closed() { return this._closed; }
  get died() { return false; }
  get subprocessClosed() { return this._closed; }
  get appData() { return this._appData; }
  set appData(v) { this._appData = v; }
  get observer() { return this._observer; }
  // Mafalda: the client behind this worker (joinRouter, events).
  get client() { return this._client; }

  close() {
    if (this._closed) return;
    this._closed = true;
    this._client.close(); // routers emit 'workerclose', as in mediasoup
    this._observer.safeEmit('close');
  }

  async createRouter({ mediaCodecs, appData } = {}) {
    if (this._closed) throw new InvalidStateError('Worker closed', 'closed');
    return this._client.createRouter({ mediaCodecs, appData });
  }

  async getResourceUsage() { throw new UnsupportedError('getResourceUsage: the routers do not run in this process'); }
  async dump() { throw new UnsupportedError('dump is not supported'); }
  async updateSettings() { /* log levels are the nodes' configuration */ }
  async createWebRtcServer() { throw new UnsupportedError('WebRtcServer: the nodes listen by their configuration'); }
}

// mediasoup's createWorker(settings): connects to the cluster. The connection comes from
// settings.mafalda ({url, urls, token, ...connect() options}) or the environment
// (MAFALDA_URL, MAFALDA_URLS comma-separated, MAFALDA_TOKEN); mediasoup's own settings
// (logLevel, rtcMinPort, ...) are accepted and ignored.
export async function createWorker(settings = {}) {
  const env = process.env;
  const conn = settings.mafalda || {
    url: env.MAFALDA_URL,
    urls: env.MAFALDA_URLS ? env.MAFALDA_URLS.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
    token: env.MAFALDA_TOKEN || undefined,
  };
  if (!conn.url && !(conn.urls && conn.urls.length)) {
    throw new MafaldaTypeError('createWorker: set settings.mafalda.url or MAFALDA_URL');
  }
  const client = await connect(conn);
  const worker = new Worker(client, settings.appData || {});
  observer.safeEmit('newworker', worker);
  return worker;
}
