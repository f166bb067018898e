// mediasoup v3's server object model (Router, WebRtcTransport, Producer, Consumer) backed by
// one Mafalda API session per Router. Property names, method names, argument and result
// shapes, events and `observer` events follow mediasoup; differences are listed in
// README.md. Objects are updated by the session's notifications (a producer closed by
// another session or node, a transport whose router closed, ICE/DTLS states, scores).
import { EventEmitter } from 'node:events';
import { MafaldaTypeError, UnsupportedError, closedError } from './errors.js';

// mediasoup's EnhancedEventEmitter.safeEmit: a throwing listener must not break the SDK's
// bookkeeping (the notification loop, close cascades).
export class SafeEmitter extends EventEmitter {
  safeEmit(event, ...args) {
    try {
      return this.emit(event, ...args);
    } catch (e) {
      console.error(`mafalda-client: a '${event}' listener threw:`, e);
      return true;
    }
  }
}

const isObject = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);

function checkAppData(appData) {
  if (appData === undefined) return {};
  if (!isObject(appData)) throw new MafaldaTypeError('if given, appData must be an object');
  return appData;
}

// Ignores the answer and every failure: close() is fire-and-forget in mediasoup.
const settle = (p) => p.then(() => undefined, () => undefined);

// ------------------------------------------------------------------ Router

export class Router extends SafeEmitter {
  // session: an open Session that joined the room; joined: router.join/create's answer.
  constructor(session, joined, appData) {
    super();
    this._session = session;
    this._id = joined.routerId;
    this._roomId = joined.roomId;
    this._rtpCapabilities = joined.rtpCapabilities;
    this._appData = appData;
    this._closed = false;
    this._transports = new Map();
    this._producers = new Map(); // every producer of this session, by id
    this._consumers = new Map();
    this._observer = new SafeEmitter();
    session.roomId = joined.roomId;
    session.resumeToken = joined.resumeToken || null;
    this._onNotification = (event, target, data) => this._dispatch(event, target, data);
    session.on('notification', this._onNotification);
    session.on('disconnect', () => this.safeEmit('disconnect'));
    session.on('reconnect', (info) => this.safeEmit('reconnect', info));
    session.on('lost', (err) => this._workerClosed(err));
  }

  get id() { return this._id; }
  get roomId() { return this._roomId; }
  get closed() { return this._closed; }
  get rtpCapabilities() { return this._rtpCapabilities; }
  get appData() { return this._appData; }
  set appData(v) { this._appData = v; }
  get observer() { return this._observer; }
  // 'new' | 'open' | 'reconnecting' | 'closed': the session's WebSocket (Mafalda only).
  get connectionState() { return this._session.state; }

  _request(method, data) {
    if (this._closed) return Promise.reject(closedError('Router'));
    return this._session.request(method, data);
  }

  // Closes the router for everyone in the room on this node (mediasoup: every transport
  // ends), then this session. Resolves once the node confirmed; never rejects.
  close() {
    if (this._closed) return Promise.resolve();
    const done = settle(this._session.request('router.close', {}));
    this._closeLocal();
    this.safeEmit('@close');
    return done.then(() => this._session.close());
  }

  // Mafalda: leaves the room without closing it for others: this session's transports
  // close (with their producers and consumers), then the WebSocket.
  async leave() {
    if (this._closed) return;
    const ids = [...this._transports.keys()];
    await Promise.all(ids.map((id) => settle(this._session.request('transport.close', { transportId: id }))));
    this._closeLocal();
    this.safeEmit('@close');
    this._session.close();
  }

  _closeLocal() {
    this._closed = true;
    for (const t of [...this._transports.values()]) t._routerClosed(false);
    this._transports.clear();
    this._session.off('notification', this._onNotification);
    this._observer.safeEmit('close');
  }

  // The session is gone for good (not resumed within the grace): like a dead mediasoup
  // worker, every transport ends with 'routerclose' and the router with 'workerclose'.
  _workerClosed(err) {
    if (this._closed) return;
    this._closed = true;
    for (const t of [...this._transports.values()]) t._routerClosed(true);
    this._transports.clear();
    this._session.off('notification', this._onNotification);
    this.safeEmit('workerclose', err);
    this._observer.safeEmit('close');
  }

  // mediasoup's canConsume() is synchronous; here the producer may live on another node,
  // so this returns a Promise<boolean> (`await router.canConsume(...)`).
  async canConsume({ producerId, rtpCapabilities } = {}) {
    if (typeof producerId !== 'string') throw new MafaldaTypeError('missing producerId');
    if (!isObject(rtpCapabilities)) throw new MafaldaTypeError('missing rtpCapabilities');
    const res = await this._request('router.canConsume', { producerId, rtpCapabilities });
    return res.canConsume === true;
  }

  async createWebRtcTransport(options = {}) {
    if (this._closed) throw closedError('Router');
    const { enableSctp, appData } = options;
    const ad = checkAppData(appData);
    if (enableSctp) throw new UnsupportedError('SCTP (DataChannels) is not supported yet');
    // listenIps/listenInfos/webRtcServer/ports: the node's own configuration decides.
    const res = await this._request('router.createWebRtcTransport', {});
    const t = new WebRtcTransport(this, res, ad);
    if (this._closed) {
      t._routerClosed(false);
      throw closedError('Router');
    }
    this._transports.set(t.id, t);
    this._observer.safeEmit('newtransport', t);
    return t;
  }

  async createPlainTransport() { throw new UnsupportedError('PlainTransport is not supported'); }
  async createPipeTransport() { throw new UnsupportedError('PipeTransport is not supported: the cluster pipes by itself'); }
  async createDirectTransport() { throw new UnsupportedError('DirectTransport is not supported'); }
  async pipeToRouter() { throw new UnsupportedError('pipeToRouter is not needed: one room spans the cluster'); }
  async createActiveSpeakerObserver() { throw new UnsupportedError('RtpObservers are not supported yet'); }
  async createAudioLevelObserver() { throw new UnsupportedError('RtpObservers are not supported yet'); }

  // Mafalda: every producer of the room, this session's and others' ({id, kind}).
  async listProducers() {
    const res = await this._request('router.listProducers', {});
    return res.producers || [];
  }

  // Notifications -> local objects. Unknown targets are objects already closed here.
  _dispatch(event, target, data) {
    switch (event) {
      case 'router.newproducer':
        // Mafalda: a producer of another session (another app server, another node).
        this.safeEmit('remoteproducer', { id: data.id || target, kind: data.kind, appData: data.appData || {} });
        return;
      case 'transport.icestatechange':
        this._transports.get(target)?._onIceState(data.iceState);
        return;
      case 'transport.dtlsstatechange':
        this._transports.get(target)?._onDtlsState(data.dtlsState);
        return;
      case 'transport.routerclose':
        this._transports.get(target)?._routerClosed(true);
        return;
      case 'producer.close':
        this._producers.get(target)?._transportClosed();
        return;
      case 'producer.score':
        this._producers.get(target)?._onScore(data);
        return;
      case 'consumer.producerclose':
        this._consumers.get(target)?._producerClosed();
        return;
      case 'consumer.producerpause':
        this._consumers.get(target)?._onProducerPaused(true);
        return;
      case 'consumer.producerresume':
        this._consumers.get(target)?._onProducerPaused(false);
        return;
      case 'consumer.score':
        this._consumers.get(target)?._onScore(data);
        return;
      case 'consumer.layerschange':
        this._consumers.get(target)?._onLayersChange(data);
        return;
      default:
        this.safeEmit('notification', { event, target, data });
    }
  }
}

// ------------------------------------------------------------------ WebRtcTransport

export class WebRtcTransport extends SafeEmitter {
  constructor(router, info, appData) {
    super();
    this._router = router;
    this._id = info.id;
    this._appData = appData;
    this._closed = false;
    this._iceRole = info.iceRole || 'controlled';
    this._iceParameters = info.iceParameters;
    this._iceCandidates = info.iceCandidates || [];
    this._iceState = info.iceState || 'new';
    this._dtlsParameters = info.dtlsParameters;
    this._dtlsState = info.dtlsState || 'new';
    this._producers = new Map();
    this._consumers = new Map();
    this._observer = new SafeEmitter();
  }

  get id() { return this._id; }
  get closed() { return this._closed; }
  get appData() { return this._appData; }
  set appData(v) { this._appData = v; }
  get observer() { return this._observer; }
  get iceRole() { return this._iceRole; }
  get iceParameters() { return this._iceParameters; }
  get iceCandidates() { return this._iceCandidates; }
  get iceState() { return this._iceState; }
  get iceSelectedTuple() { return undefined; }
  get dtlsParameters() { return this._dtlsParameters; }
  get dtlsState() { return this._dtlsState; }
  get dtlsRemoteCert() { return undefined; }
  get sctpParameters() { return undefined; }
  get sctpState() { return undefined; }

  _request(method, data) {
    if (this._closed) return Promise.reject(closedError('Transport'));
    return this._router._session.request(method, { transportId: this._id, ...data });
  }

  close() {
    if (this._closed) return Promise.resolve();
    const done = settle(this._router._session.request('transport.close', { transportId: this._id }));
    this._closeLocal();
    this.safeEmit('@close');
    return done;
  }

  _closeLocal() {
    this._closed = true;
    this._router._transports.delete(this._id);
    for (const p of [...this._producers.values()]) p._transportClosed();
    for (const c of [...this._consumers.values()]) c._transportClosed();
    this._observer.safeEmit('close');
  }

  // The node closed this transport's router (router.close by anyone, or the session was
  // lost): mediasoup's 'routerclose'.
  _routerClosed(emit) {
    if (this._closed) return;
    this._closeLocal();
    if (emit) this.safeEmit('routerclose');
  }

  _onIceState(state) {
    if (this._closed || !state) return;
    this._iceState = state;
    this.safeEmit('icestatechange', state);
    this._observer.safeEmit('icestatechange', state);
  }

  _onDtlsState(state) {
    if (this._closed || !state) return;
    this._dtlsState = state;
    this.safeEmit('dtlsstatechange', state);
    this._observer.safeEmit('dtlsstatechange', state);
    // The node closes a transport whose DTLS closed or failed at once (its client is
    // gone): mirror that here, announced with '@close'.
    if (state === 'closed' || state === 'failed') {
      this._closeLocal();
      this.safeEmit('@close');
    }
  }

  // No transport.getStats method on the node yet: what this object knows, shaped like
  // mediasoup's WebRtcTransportStat.
  async getStats() {
    if (this._closed) throw closedError('Transport');
    return [{
      type: 'webrtc-transport',
      transportId: this._id,
      timestamp: Date.now(),
      iceRole: this._iceRole,
      iceState: this._iceState,
      dtlsState: this._dtlsState,
    }];
  }

  async connect({ dtlsParameters } = {}) {
    if (!isObject(dtlsParameters)) throw new MafaldaTypeError('missing dtlsParameters');
    await this._request('transport.connect', { dtlsParameters });
  }

  async restartIce() { throw new UnsupportedError('restartIce is not supported yet'); }
  async setMaxIncomingBitrate() { throw new UnsupportedError('setMaxIncomingBitrate is not supported yet'); }
  async setMaxOutgoingBitrate() { throw new UnsupportedError('setMaxOutgoingBitrate is not supported yet'); }
  async enableTraceEvent() { /* no trace events are produced */ }
  async produceData() { throw new UnsupportedError('DataProducers are not supported yet'); }
  async consumeData() { throw new UnsupportedError('DataConsumers are not supported yet'); }

  async produce(options = {}) {
    const { id, kind, rtpParameters, paused = false, appData } = options;
    if (this._closed) throw closedError('Transport');
    if (id !== undefined) throw new UnsupportedError('a given producer id is not supported: the node picks it');
    if (kind !== 'audio' && kind !== 'video') throw new MafaldaTypeError(`invalid kind "${kind}"`);
    if (!isObject(rtpParameters)) throw new MafaldaTypeError('missing rtpParameters');
    const ad = checkAppData(appData);
    const res = await this._request('transport.produce', { kind, rtpParameters, paused: !!paused, appData: ad });
    const p = new Producer(this, { id: res.id, kind, rtpParameters, paused: !!paused }, ad);
    if (this._closed) {
      p._transportClosed();
      throw closedError('Transport');
    }
    this._producers.set(p.id, p);
    this._router._producers.set(p.id, p);
    this._observer.safeEmit('newproducer', p);
    return p;
  }

  async consume(options = {}) {
    const { producerId, rtpCapabilities, paused = false, preferredLayers, pipe, appData } = options;
    if (this._closed) throw closedError('Transport');
    if (typeof producerId !== 'string' || !producerId) throw new MafaldaTypeError('missing producerId');
    if (!isObject(rtpCapabilities)) throw new MafaldaTypeError('missing rtpCapabilities');
    if (pipe) throw new UnsupportedError('pipe consumers are not supported: the cluster pipes by itself');
    const ad = checkAppData(appData);
    const res = await this._request('transport.consume', { producerId, rtpCapabilities, paused: !!paused });
    const c = new Consumer(this, res, ad, preferredLayers);
    if (this._closed) {
      c._transportClosed();
      throw closedError('Transport');
    }
    this._consumers.set(c.id, c);
    this._router._consumers.set(c.id, c);
    this._observer.safeEmit('newconsumer', c);
    return c;
  }
}

// ------------------------------------------------------------------ Producer

export class Producer extends SafeEmitter {
  constructor(transport, { id, kind, rtpParameters, paused }, appData) {
    super();
    this._transport = transport;
    this._id = id;
    this._kind = kind;
    this._rtpParameters = rtpParameters;
    this._paused = paused;
    this._appData = appData;
    this._closed = false;
    this._score = [];
    this._observer = new SafeEmitter();
  }

  get id() { return this._id; }
  get closed() { return this._closed; }
  get kind() { return this._kind; }
  get rtpParameters() { return this._rtpParameters; }
  get type() { return 'simple'; }
  get paused() { return this._paused; }
  get score() { return this._score; }
  get appData() { return this._appData; }
  set appData(v) { this._appData = v; }
  get observer() { return this._observer; }

  _request(method) {
    if (this._closed) return Promise.reject(closedError('Producer'));
    return this._transport._router._session.request(method, { producerId: this._id });
  }

  close() {
    if (this._closed) return Promise.resolve();
    const done = settle(this._transport._router._session.request('producer.close', { producerId: this._id }));
    this._closeLocal();
    this.safeEmit('@close');
    return done;
  }

  _closeLocal() {
    this._closed = true;
    this._transport._producers.delete(this._id);
    this._transport._router._producers.delete(this._id);
    this._observer.safeEmit('close');
  }

  // Its transport (or router) closed, here or on the node.
  _transportClosed() {
    if (this._closed) return;
    this._closeLocal();
    this.safeEmit('transportclose');
  }

  _onScore(data) {
    if (this._closed) return;
    this._score = Array.isArray(data) ? data : (data.score || []);
    this.safeEmit('score', this._score);
    this._observer.safeEmit('score', this._score);
  }

  async getStats() {
    const res = await this._request('producer.getStats');
    return res.stats || [];
  }

  async pause() {
    const was = this._paused;
    await this._request('producer.pause');
    this._paused = true;
    if (!was) this._observer.safeEmit('pause');
  }

  async resume() {
    const was = this._paused;
    await this._request('producer.resume');
    this._paused = false;
    if (was) this._observer.safeEmit('resume');
  }

  async enableTraceEvent() { /* no trace events are produced */ }
}

// ------------------------------------------------------------------ Consumer

export class Consumer extends SafeEmitter {
  constructor(transport, info, appData, preferredLayers) {
    super();
    this._transport = transport;
    this._id = info.id;
    this._producerId = info.producerId;
    this._kind = info.kind;
    this._rtpParameters = info.rtpParameters;
    this._type = info.type || 'simple';
    this._paused = !!info.paused;
    this._producerPaused = !!info.producerPaused;
    this._appData = appData;
    this._closed = false;
    this._score = { score: 10, producerScore: 10, producerScores: [] };
    this._preferredLayers = preferredLayers;
    this._currentLayers = undefined;
    this._observer = new SafeEmitter();
  }

  get id() { return this._id; }
  get producerId() { return this._producerId; }
  get closed() { return this._closed; }
  get kind() { return this._kind; }
  get rtpParameters() { return this._rtpParameters; }
  get type() { return this._type; }
  get paused() { return this._paused; }
  get producerPaused() { return this._producerPaused; }
  get priority() { return 1; }
  get score() { return this._score; }
  get preferredLayers() { return this._preferredLayers; }
  get currentLayers() { return this._currentLayers; }
  get appData() { return this._appData; }
  set appData(v) { this._appData = v; }
  get observer() { return this._observer; }

  _request(method, extra = {}) {
    if (this._closed) return Promise.reject(closedError('Consumer'));
    return this._transport._router._session.request(method, { consumerId: this._id, ...extra });
  }

  close() {
    if (this._closed) return Promise.resolve();
    const done = settle(this._transport._router._session.request('consumer.close', { consumerId: this._id }));
    this._closeLocal();
    this.safeEmit('@close');
    return done;
  }

  _closeLocal() {
    this._closed = true;
    this._transport._consumers.delete(this._id);
    this._transport._router._consumers.delete(this._id);
    this._observer.safeEmit('close');
  }

  _transportClosed() {
    if (this._closed) return;
    this._closeLocal();
    this.safeEmit('transportclose');
  }

  _producerClosed() {
    if (this._closed) return;
    this._closeLocal();
    this.safeEmit('@producerclose');
    this.safeEmit('producerclose');
  }

  _onProducerPaused(paused) {
    if (this._closed || this._producerPaused === paused) return;
    this._producerPaused = paused;
    this.safeEmit(paused ? 'producerpause' : 'producerresume');
    // observer 'pause'/'resume' tell whether media flows, as in mediasoup
    if (!this._paused) this._observer.safeEmit(paused ? 'pause' : 'resume');
  }

  _onScore(data) {
    if (this._closed) return;
    this._score = { producerScores: [], ...this._score, ...data };
    this.safeEmit('score', this._score);
    this._observer.safeEmit('score', this._score);
  }

  _onLayersChange(layers) {
    if (this._closed) return;
    this._currentLayers = layers && Object.keys(layers).length ? layers : undefined;
    this.safeEmit('layerschange', this._currentLayers);
    this._observer.safeEmit('layerschange', this._currentLayers);
  }

  async getStats() {
    const res = await this._request('consumer.getStats');
    return res.stats || [];
  }

  async pause() {
    const was = this._paused;
    await this._request('consumer.pause');
    this._paused = true;
    if (!was && !this._producerPaused) this._observer.safeEmit('pause');
  }

  async resume() {
    const was = this._paused;
    await this._request('consumer.resume');
    this._paused = false;
    if (was && !this._producerPaused) this._observer.safeEmit('resume');
  }

  // Rejects with UnsupportedError (code 'unsupported') until the node selects
  // simulcast/SVC layers.
  async setPreferredLayers({ spatialLayer, temporalLayer } = {}) {
    if (typeof spatialLayer !== 'number') throw new MafaldaTypeError('missing spatialLayer');
    const extra = { spatialLayer };
    if (typeof temporalLayer === 'number') extra.temporalLayer = temporalLayer;
    await this._request('consumer.setPreferredLayers', extra);
    this._preferredLayers = { spatialLayer, temporalLayer };
  }

  async setPriority() { throw new UnsupportedError('consumer priorities are not supported yet'); }
  async unsetPriority() { throw new UnsupportedError('consumer priorities are not supported yet'); }

  async requestKeyFrame() {
    await this._request('consumer.requestKeyFrame');
  }

  async enableTraceEvent() { /* no trace events are produced */ }
}

