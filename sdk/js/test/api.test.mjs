// Every method, event and error mapping of the SDK against a real mafalda-node (with a
// secret: tokens are checked). Media-driven events (ICE/DTLS states, scores) are covered
// by e2e.test.mjs with Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import mafaldaClient, { ConnectionError, InvalidStateError, MafaldaError, MafaldaTypeError,
  UnauthorizedError, UnsupportedError, createWorker, types } from '../index.js';
import { fromServer } from '../lib/errors.js';
import { apiUrl } from '../lib/session.js';
import { FAKE_DTLS, MEDIA_CODECS, mintToken, once, sendParams, startNode, waitFor } from './helpers.mjs';

let node;
let token;
const clients = [];

before(async () => {
  node = await startNode();
  token = mintToken();
});

after(async () => {
  for (const c of clients) c.close();
  const status = await node.stop();
  assert.equal(status, '0', `mafalda-node did not stop cleanly:\n${node.log().split('\n').slice(-40).join('\n')}`);
});

async function client(opts = {}) {
  const c = await mafaldaClient.connect({ url: node.url, token, ...opts });
  clients.push(c);
  return c;
}

test('error mapping: server codes -> Error subclasses', () => {
  const table = [
    ['invalid_argument', MafaldaTypeError, TypeError],
    ['parse_error', MafaldaTypeError, TypeError],
    ['invalid_state', InvalidStateError, MafaldaError],
    ['closed', InvalidStateError, MafaldaError],
    ['unsupported', UnsupportedError, MafaldaError],
    ['unauthorized', UnauthorizedError, MafaldaError],
    ['not_found', MafaldaError, Error],
    ['already_exists', MafaldaError, Error],
    ['limit_exceeded', MafaldaError, Error],
    [undefined, MafaldaError, Error],
  ];
  for (const [code, cls, base] of table) {
    const e = fromServer('x.y', code ? { code, message: 'm' } : null);
    assert.ok(e instanceof cls, `${code} -> ${cls.name}`);
    assert.ok(e instanceof base);
    assert.ok(e instanceof Error);
    assert.equal(e.code, code || 'internal_error');
    assert.equal(e.method, 'x.y');
  }
  assert.equal(new InvalidStateError('x').name, 'InvalidStateError');
  assert.equal(new UnsupportedError('x').name, 'UnsupportedError');
  assert.equal(types.InvalidStateError, InvalidStateError);
});

test('apiUrl: valid and malformed urls', () => {
  assert.equal(apiUrl('ws://h:1', 't'), 'ws://h:1/v1/ws?token=t');
  assert.equal(apiUrl('http://h:1/', null), 'ws://h:1/v1/ws');
  assert.equal(apiUrl('https://h/v1/ws', 'a.b.c'), 'wss://h/v1/ws?token=a.b.c');
  assert.equal(apiUrl('wss://h/custom', 't'), 'wss://h/custom?token=t');
  assert.throws(() => apiUrl('not a url', 't'), TypeError);
  assert.throws(() => apiUrl('ftp://h', 't'), TypeError);
});

test('connect: argument checks, refused token, unreachable url', async () => {
  await assert.rejects(mafaldaClient.connect(), TypeError);
  await assert.rejects(mafaldaClient.connect({}), TypeError);
  await assert.rejects(mafaldaClient.connect({ url: 42 }), TypeError);
  await assert.rejects(mafaldaClient.connect({ url: node.url, token: 'a.b.c' }),
    (e) => e instanceof UnauthorizedError && e.code === 'unauthorized');
  await assert.rejects(mafaldaClient.connect({ url: node.url }), // no token, not dev mode
    (e) => e instanceof UnauthorizedError);
  await assert.rejects(mafaldaClient.connect({ url: 'ws://127.0.0.1:1/v1/ws', token }),
    (e) => e instanceof ConnectionError && e.code === 'connection_lost');
  // urls: the first reachable one wins
  const c = await client({ url: undefined, urls: ['ws://127.0.0.1:1/v1/ws', node.url] });
  assert.equal(c.closed, false);
});

test('createRouter / joinRouter: properties, codecs, errors', async () => {
  const c = await client();
  const newRouters = [];
  c.observer.on('newrouter', (r) => newRouters.push(r));
  const r = await c.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { app: 1 } });
  assert.match(r.id, /^[0-9a-f-]{36}$/);
  assert.equal(typeof r.roomId, 'string');
  assert.equal(r.closed, false);
  assert.deepEqual(r.appData, { app: 1 });
  assert.deepEqual(r.rtpCapabilities.codecs.map((x) => x.mimeType).filter((m) => !m.endsWith('/rtx')),
    ['audio/opus', 'video/VP8']);
  assert.deepEqual(newRouters, [r]);
  assert.deepEqual(c.routers, [r]);
  assert.equal(r.connectionState, 'open');

  // the same room twice: already_exists; joining it works and gives the same router id
  await assert.rejects(c.createRouter({ roomId: r.roomId }), (e) => e instanceof MafaldaError && e.code === 'already_exists');
  const j = await c.joinRouter(r.roomId);
  assert.equal(j.id, r.id);
  assert.equal(j.roomId, r.roomId);
  const j2 = await c.joinRouter({ roomId: r.roomId });
  assert.equal(j2.id, r.id);

  await assert.rejects(c.createRouter({ appData: 5 }), TypeError);
  await assert.rejects(c.createRouter({ mediaCodecs: 'vp8' }), TypeError);
  await assert.rejects(c.createRouter({ mediaCodecs: [{ kind: 'video', mimeType: 'video/NOPE', clockRate: 90000 }] }),
    (e) => e instanceof Error && typeof e.code === 'string' && e.code !== 'internal_error');
  await assert.rejects(c.joinRouter(''), TypeError);
  await assert.rejects(c.joinRouter({ roomId: 'x'.repeat(300) }), (e) => e instanceof MafaldaTypeError && e.code === 'invalid_argument');

  // a join token: only its room; createRouter defaults to it
  const jt = mintToken({ room: 'only-this', grant: 'join' });
  const cj = await client({ token: jt });
  await assert.rejects(cj.joinRouter('another-room'), (e) => e instanceof UnauthorizedError);
  const own = await cj.createRouter({});
  assert.equal(own.roomId, 'only-this');
});

test('transport, producer, consumer: every method and event', async () => {
  const ca = await client();
  const cb = await client();
  const ra = await ca.createRouter({ mediaCodecs: MEDIA_CODECS });
  const rb = await cb.joinRouter(ra.roomId);

  // createWebRtcTransport
  const newTransports = [];
  ra.observer.on('newtransport', (t) => newTransports.push(t));
  await assert.rejects(ra.createWebRtcTransport({ appData: 'x' }), TypeError);
  await assert.rejects(ra.createWebRtcTransport({ enableSctp: true }), UnsupportedError);
  const ta = await ra.createWebRtcTransport({ listenIps: ['127.0.0.1'], appData: { side: 'a' } });
  assert.deepEqual(newTransports, [ta]);
  assert.match(ta.id, /^[0-9a-f-]{36}$/);
  assert.equal(ta.iceRole, 'controlled');
  assert.equal(ta.iceParameters.iceLite, true);
  assert.ok(ta.iceCandidates.length >= 1 && ta.iceCandidates[0].ip === '127.0.0.1');
  assert.ok(ta.dtlsParameters.fingerprints.some((f) => f.algorithm === 'sha-256'));
  assert.equal(ta.iceState, 'new');
  assert.equal(ta.dtlsState, 'new');
  assert.deepEqual(ta.appData, { side: 'a' });
  const st = await ta.getStats();
  assert.equal(st[0].type, 'webrtc-transport');
  assert.equal(st[0].transportId, ta.id);

  await assert.rejects(ta.connect({}), TypeError);
  await ta.connect({ dtlsParameters: FAKE_DTLS });
  await assert.rejects(ta.restartIce(), UnsupportedError);
  await assert.rejects(ta.produceData({}), UnsupportedError);
  await assert.rejects(ta.consumeData({}), UnsupportedError);
  await assert.rejects(ra.pipeToRouter({}), UnsupportedError);

  // produce: local checks, server checks, success
  await assert.rejects(ta.produce({ kind: 'data', rtpParameters: {} }), TypeError);
  await assert.rejects(ta.produce({ kind: 'video' }), TypeError);
  await assert.rejects(ta.produce({ kind: 'video', rtpParameters: sendParams(ra, 'video', 1), appData: [] }), TypeError);
  await assert.rejects(ta.produce({ kind: 'video', rtpParameters: { codecs: 'x' } }),
    (e) => e instanceof MafaldaTypeError && typeof e.code === 'string' && e.method === 'transport.produce');
  // router.newproducer reaches the sessions that own a transport in the room
  const tb = await rb.createWebRtcTransport();
  const remote = once(rb, 'remoteproducer');
  const newProducers = [];
  ta.observer.on('newproducer', (p) => newProducers.push(p));
  const pa = await ta.produce({ kind: 'video', rtpParameters: sendParams(ra, 'video', 1111), appData: { who: 'a' } });
  assert.deepEqual(newProducers, [pa]);
  assert.equal(pa.kind, 'video');
  assert.equal(pa.type, 'simple');
  assert.equal(pa.paused, false);
  assert.equal(pa.closed, false);
  assert.deepEqual(pa.appData, { who: 'a' });
  assert.equal(pa.rtpParameters.encodings[0].ssrc, 1111);
  const [announced] = await remote;
  assert.deepEqual(announced, { id: pa.id, kind: 'video', appData: { who: 'a' } });
  const listed = await rb.listProducers();
  assert.ok(listed.some((p) => p.id === pa.id && p.kind === 'video'));
  assert.ok(Array.isArray(await pa.getStats()));

  // canConsume (async here)
  assert.equal(await rb.canConsume({ producerId: pa.id, rtpCapabilities: rb.rtpCapabilities }), true);
  assert.equal(await rb.canConsume({ producerId: '2b3c4d5e-0000-4000-8000-000000000000', rtpCapabilities: rb.rtpCapabilities }), false);
  await assert.rejects(rb.canConsume({ rtpCapabilities: {} }), TypeError);
  await assert.rejects(rb.canConsume({ producerId: pa.id }), TypeError);

  // consume
  await assert.rejects(tb.consume({ rtpCapabilities: rb.rtpCapabilities }), TypeError);
  await assert.rejects(tb.consume({ producerId: pa.id }), TypeError);
  await assert.rejects(tb.consume({ producerId: pa.id, rtpCapabilities: rb.rtpCapabilities, pipe: true }), UnsupportedError);
  await assert.rejects(tb.consume({ producerId: '2b3c4d5e-0000-4000-8000-000000000000', rtpCapabilities: rb.rtpCapabilities }),
    (e) => e instanceof MafaldaError && e.code === 'not_found');
  await assert.rejects(tb.consume({ producerId: 'nope', rtpCapabilities: rb.rtpCapabilities }),
    (e) => e instanceof TypeError && e.code === 'invalid_argument');
  const newConsumers = [];
  tb.observer.on('newconsumer', (x) => newConsumers.push(x));
  const cons = await tb.consume({ producerId: pa.id, rtpCapabilities: rb.rtpCapabilities, paused: true, appData: { c: 1 } });
  assert.deepEqual(newConsumers, [cons]);
  assert.equal(cons.producerId, pa.id);
  assert.equal(cons.kind, 'video');
  assert.equal(cons.type, 'simple');
  assert.equal(cons.paused, true);
  assert.equal(cons.producerPaused, false);
  assert.deepEqual(cons.appData, { c: 1 });
  assert.equal(cons.rtpParameters.codecs[0].mimeType, 'video/VP8');
  assert.ok(cons.rtpParameters.encodings[0].ssrc > 0);

  // consumer pause/resume with observer events
  const obs = [];
  cons.observer.on('pause', () => obs.push('pause'));
  cons.observer.on('resume', () => obs.push('resume'));
  await cons.resume();
  assert.equal(cons.paused, false);
  await cons.pause();
  assert.equal(cons.paused, true);
  await cons.resume();
  assert.deepEqual(obs, ['resume', 'pause', 'resume']);
  await cons.requestKeyFrame();
  const cstats = await cons.getStats();
  assert.equal(cstats[0].type, 'outbound-rtp');
  await assert.rejects(cons.setPreferredLayers({ spatialLayer: 1, temporalLayer: 0 }),
    (e) => e instanceof UnsupportedError && e.code === 'unsupported' && e.method === 'consumer.setPreferredLayers');
  await assert.rejects(cons.setPreferredLayers({}), TypeError);
  await assert.rejects(cons.setPriority(2), UnsupportedError);

  // producer pause/resume -> consumer producerpause/producerresume (+ observer)
  const pobs = [];
  pa.observer.on('pause', () => pobs.push('pause'));
  pa.observer.on('resume', () => pobs.push('resume'));
  const pp = once(cons, 'producerpause');
  await pa.pause();
  assert.equal(pa.paused, true);
  await pp;
  assert.equal(cons.producerPaused, true);
  assert.deepEqual(obs.slice(-1), ['pause']);
  const pr = once(cons, 'producerresume');
  await pa.resume();
  await pr;
  assert.equal(cons.producerPaused, false);
  assert.deepEqual(pobs, ['pause', 'resume']);

  // score / layerschange notifications (media-driven: fed here as the node sends them)
  const scores = [];
  cons.on('score', (x) => scores.push(['c', x.score, x.producerScore]));
  cons.observer.on('score', () => scores.push(['co']));
  pa.on('score', (x) => scores.push(['p', x[0].score]));
  pa.observer.on('score', () => scores.push(['po']));
  rb._dispatch('consumer.score', cons.id, { score: 7, producerScore: 9 });
  ra._dispatch('producer.score', pa.id, [{ encodingIdx: 0, ssrc: 1111, score: 8 }]);
  rb._dispatch('consumer.score', 'unknown-id', { score: 1 });
  assert.deepEqual(scores, [['c', 7, 9], ['co'], ['p', 8], ['po']]);
  assert.equal(cons.score.score, 7);
  assert.equal(pa.score[0].score, 8);
  const layers = once(cons, 'layerschange');
  rb._dispatch('consumer.layerschange', cons.id, { spatialLayer: 0, temporalLayer: 1 });
  assert.deepEqual((await layers)[0], { spatialLayer: 0, temporalLayer: 1 });
  assert.deepEqual(cons.currentLayers, { spatialLayer: 0, temporalLayer: 1 });

  // consumer.close: local, idempotent; methods then throw InvalidStateError
  const cons2 = await tb.consume({ producerId: pa.id, rtpCapabilities: rb.rtpCapabilities });
  assert.equal(cons2.paused, false);
  const c2close = once(cons2.observer, 'close');
  await cons2.close();
  await c2close;
  assert.equal(cons2.closed, true);
  await cons2.close();
  await assert.rejects(cons2.pause(), (e) => e instanceof InvalidStateError && e.code === 'closed');
  await assert.rejects(cons2.getStats(), InvalidStateError);

  // producer.close -> the consumer in the other session: producerclose + observer close
  const pcl = once(cons, 'producerclose');
  const ocl = once(cons.observer, 'close');
  const paClose = once(pa.observer, 'close');
  await pa.close();
  await paClose;
  assert.equal(pa.closed, true);
  await assert.rejects(pa.pause(), InvalidStateError);
  await pcl;
  await ocl;
  assert.equal(cons.closed, true);

  // transport.close: its producers and consumers emit transportclose; others learn
  // producerclose
  const pa2 = await ta.produce({ kind: 'audio', rtpParameters: sendParams(ra, 'audio', 2222) });
  const cons3 = await tb.consume({ producerId: pa2.id, rtpCapabilities: rb.rtpCapabilities });
  const tcl = once(pa2, 'transportclose');
  const remoteClosed = once(cons3, 'producerclose');
  const taClose = once(ta.observer, 'close');
  await ta.close();
  await tcl;
  await taClose;
  assert.equal(ta.closed, true);
  await remoteClosed;
  await assert.rejects(ta.produce({ kind: 'audio', rtpParameters: sendParams(ra, 'audio', 3) }), InvalidStateError);
  await assert.rejects(ta.getStats(), InvalidStateError);
  await assert.rejects(ta.connect({ dtlsParameters: FAKE_DTLS }), InvalidStateError);
});

test('router.close: every transport of the room ends (routerclose / transportclose)', async () => {
  const ca = await client();
  const cb = await client();
  const ra = await ca.createRouter({});
  const rb = await cb.joinRouter(ra.roomId);
  const ta = await ra.createWebRtcTransport();
  const pa = await ta.produce({ kind: 'video', rtpParameters: sendParams(ra, 'video', 4444) });
  const tb = await rb.createWebRtcTransport();
  const pb = await tb.produce({ kind: 'audio', rtpParameters: sendParams(rb, 'audio', 5555) });
  const cb1 = await tb.consume({ producerId: pa.id, rtpCapabilities: rb.rtpCapabilities });

  const events = [];
  tb.on('routerclose', () => events.push('tb routerclose'));
  pb.on('transportclose', () => events.push('pb transportclose'));
  cb1.on('transportclose', () => events.push('cb1 transportclose'));
  cb1.on('producerclose', () => events.push('cb1 producerclose'));
  ta.on('routerclose', () => events.push('ta routerclose'));
  pa.on('transportclose', () => events.push('pa transportclose'));
  const raClosed = once(ra.observer, 'close');
  await ra.close();
  await raClosed;
  assert.equal(ra.closed, true);
  assert.equal(ta.closed, true);
  assert.equal(pa.closed, true);
  await waitFor('the other session to see its router close', () => tb.closed && pb.closed && cb1.closed);
  // the closing router's own objects close without 'routerclose' (mediasoup's close()),
  // the other session's transport hears 'routerclose' and cascades
  assert.ok(events.includes('tb routerclose'), events.join());
  assert.ok(events.includes('pb transportclose'), events.join());
  assert.ok(events.includes('cb1 transportclose') || events.includes('cb1 producerclose'), events.join());
  assert.ok(events.includes('pa transportclose'));
  assert.ok(!events.includes('ta routerclose'));
  await assert.rejects(ra.createWebRtcTransport(), InvalidStateError);
  // the room lives on: rb's router is still usable and makes new transports
  const tb2 = await rb.createWebRtcTransport();
  assert.equal(tb2.closed, false);
});

test('router.leave: this session only; others see producerclose', async () => {
  const ca = await client();
  const cb = await client();
  const ra = await ca.createRouter({});
  const rb = await cb.joinRouter(ra.roomId);
  const ta = await ra.createWebRtcTransport();
  const pa = await ta.produce({ kind: 'video', rtpParameters: sendParams(ra, 'video', 6666) });
  const tb = await rb.createWebRtcTransport();
  const cons = await tb.consume({ producerId: pa.id, rtpCapabilities: rb.rtpCapabilities });
  const pcl = once(cons, 'producerclose');
  await ra.leave();
  assert.equal(ra.closed, true);
  assert.equal(pa.closed, true);
  await pcl;
  assert.equal(tb.closed, false);
});

test('createWorker shim: mediasoup-style code runs against the cluster', async () => {
  const seen = [];
  mafaldaClient.observer.once('newworker', () => seen.push('newworker'));
  const worker = await createWorker({ logLevel: 'warn', rtcMinPort: 40000, mafalda: { url: node.url, token } });
  assert.deepEqual(seen, ['newworker']);
  worker.observer.on('newrouter', () => seen.push('newrouter'));
  const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
  assert.deepEqual(seen, ['newworker', 'newrouter']);
  const transport = await router.createWebRtcTransport({ listenIps: [{ ip: '0.0.0.0', announcedIp: '127.0.0.1' }], enableUdp: true });
  const producer = await transport.produce({ kind: 'audio', rtpParameters: sendParams(router, 'audio', 7777) });
  assert.equal(producer.kind, 'audio');
  await assert.rejects(worker.getResourceUsage(), UnsupportedError);

  // the environment works too
  process.env.MAFALDA_URL = node.url;
  process.env.MAFALDA_TOKEN = token;
  const w2 = await createWorker();
  delete process.env.MAFALDA_URL;
  delete process.env.MAFALDA_TOKEN;
  w2.close();
  await assert.rejects(createWorker(), TypeError);

  const wc = once(router, 'workerclose');
  const tc = once(transport, 'routerclose');
  const pc = once(producer, 'transportclose');
  worker.close();
  await wc;
  await tc;
  await pc;
  assert.equal(worker.closed, true);
  assert.equal(router.closed, true);
  await assert.rejects(worker.createRouter({}), InvalidStateError);
});

test('client.close: routers close, requests fail cleanly', async () => {
  const c = await client();
  const r = await c.createRouter({});
  const wc = once(r, 'workerclose');
  c.close();
  await wc;
  await assert.rejects(r.createWebRtcTransport(), InvalidStateError);
  await assert.rejects(c.createRouter({}), InvalidStateError);
});
