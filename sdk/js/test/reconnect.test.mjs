// Reconnection: the SDK's WebSocket goes through a TCP proxy the test cuts. Within the
// node's grace (--api-grace-ms 1500) the session resumes (same URL, or the next of `urls`)
// and every object survives; after it, the SDK fails cleanly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import mafaldaClient, { ConnectionError, InvalidStateError } from '../index.js';
import { mintToken, once, sendParams, sleep, startNode, startProxy, waitFor } from './helpers.mjs';

const GRACE = 1500;
let node;
let token;
const clients = [];
const proxies = [];

before(async () => {
  node = await startNode({ graceMs: GRACE });
  token = mintToken();
});

after(async () => {
  for (const c of clients) c.close();
  for (const p of proxies) await p.stop();
  const status = await node.stop();
  assert.equal(status, '0', `mafalda-node did not stop cleanly:\n${node.log().split('\n').slice(-40).join('\n')}`);
});

async function proxy() {
  const p = await startProxy(node.port);
  proxies.push(p);
  return p;
}

async function client(opts) {
  const c = await mafaldaClient.connect({ token, graceMs: GRACE, ...opts });
  clients.push(c);
  return c;
}

// A room where A (through `opts`) produces and B (direct) consumes A's producer.
async function room(opts) {
  const ca = await client(opts);
  const cb = await client({ url: node.url });
  const ra = await ca.createRouter({});
  const rb = await cb.joinRouter(ra.roomId);
  const ta = await ra.createWebRtcTransport();
  const tb = await rb.createWebRtcTransport();
  const pa = await ta.produce({ kind: 'video', rtpParameters: sendParams(ra, 'video', 1234) });
  const cons = await tb.consume({ producerId: pa.id, rtpCapabilities: rb.rtpCapabilities });
  return { ca, ra, ta, pa, rb, tb, cons };
}

test('drop within the grace: resumes on the same URL, objects survive', async () => {
  const px = await proxy();
  const { ca, ra, ta, pa, cons } = await room({ url: px.url });
  let producerClosed = false;
  cons.on('producerclose', () => { producerClosed = true; });

  // a request in flight when the socket drops fails with connection_lost
  px.hold = true;
  const inflight = pa.getStats();
  await sleep(50);
  const disc = once(ra, 'disconnect');
  const clientDisc = once(ca, 'disconnect');
  const rec = once(ra, 'reconnect');
  px.drop();
  px.hold = false;
  await assert.rejects(inflight, (e) => e instanceof ConnectionError && e.code === 'connection_lost' &&
    /may or may not/.test(e.message));
  await disc;
  await clientDisc;
  // a request made while reconnecting waits and succeeds after the resume
  const queued = pa.pause();
  await rec;
  await queued;
  assert.equal(ra.connectionState, 'open');
  assert.equal(pa.paused, true);
  // the other session's consumer heard the pause: the objects are the same
  await waitFor('producerpause at the consumer', () => cons.producerPaused);
  assert.equal(producerClosed, false);
  // more work on the resumed session, and a second drop
  const t2 = await ra.createWebRtcTransport();
  const rec2 = once(ra, 'reconnect');
  px.drop();
  await rec2;
  await pa.resume();
  await waitFor('producerresume at the consumer', () => !cons.producerPaused);
  await t2.close();
  assert.equal(ta.closed, false);
  await sleep(GRACE + 300); // past the first sockets' grace: nothing of ours closed
  assert.equal(pa.closed, false);
  assert.equal(cons.closed, false);
  assert.equal(producerClosed, false);
});

test('the URL goes away: resumes through the next URL of urls', async () => {
  const px = await proxy();
  const { ra, pa, cons } = await room({ url: px.url, urls: [node.url] });
  const rec = once(ra, 'reconnect');
  await px.stop(); // refuses connections from now on
  const [info] = await rec;
  assert.equal(info.url, node.url);
  await pa.pause();
  await waitFor('producerpause at the consumer', () => cons.producerPaused);
  assert.equal(cons.closed, false);
});

test('a dead path without FIN is detected by the heartbeat and resumed', async () => {
  const px = await proxy();
  const { ra, pa } = await room({ url: px.url, heartbeatMs: 200 });
  const disc = once(ra, 'disconnect', 3000);
  px.hold = true; // nothing passes, nothing closes
  await disc;
  px.hold = false;
  await once(ra, 'reconnect', 3000);
  assert.ok(Array.isArray(await pa.getStats()));
});

test('after the grace: the session is lost, pending requests and objects fail cleanly', async () => {
  const px = await proxy();
  const { ca, ra, ta, pa, cons } = await room({ url: px.url });
  const events = [];
  ra.on('workerclose', (err) => events.push(['workerclose', err?.code]));
  ta.on('routerclose', () => events.push(['routerclose']));
  pa.on('transportclose', () => events.push(['transportclose']));
  ca.on('sessionlost', (r, err) => events.push(['sessionlost', err.code]));
  const remoteClose = once(cons, 'producerclose', GRACE + 3000);
  const lost = once(ra, 'workerclose', GRACE + 3000);
  await px.stop(); // no way back
  await once(ra, 'disconnect');
  const waiting = pa.pause(); // queued while reconnecting, never sent
  const t0 = Date.now();
  await lost;
  const took = Date.now() - t0;
  assert.ok(took >= GRACE - 200, `lost after ${took} ms, before the grace`);
  await assert.rejects(waiting, (e) => e instanceof ConnectionError && e.code === 'session_lost' && /session lost/.test(e.message));
  assert.deepEqual(events.map((e) => e[0]).sort(), ['routerclose', 'sessionlost', 'transportclose', 'workerclose']);
  assert.equal(events.find((e) => e[0] === 'workerclose')[1], 'session_lost');
  assert.equal(ra.closed, true);
  assert.equal(ta.closed, true);
  assert.equal(pa.closed, true);
  await assert.rejects(pa.resume(), InvalidStateError);
  await assert.rejects(ra.createWebRtcTransport(), InvalidStateError);
  // the node closed A's objects after its grace: B's consumer heard it
  await remoteClose;
  // the client itself still works: a new router on a new session
  await px.start();
  const r2 = await ca.joinRouter(ra.roomId);
  assert.equal(r2.closed, false);
});

test('back after the node dropped the session: resume refused, clean failure at once', async () => {
  const px = await proxy();
  // the client would wait 10 s, the node keeps the objects 1.5 s
  const { ra, pa } = await room({ url: px.url, graceMs: 10000 });
  await px.stop();
  await once(ra, 'disconnect');
  await sleep(GRACE + 500);
  const lost = once(ra, 'workerclose', 5000);
  await px.start(); // same port: the next attempt reaches the node, which says not_found
  const t0 = Date.now();
  const [err] = await lost;
  assert.ok(Date.now() - t0 < 3000);
  assert.equal(err.code, 'session_lost');
  assert.match(err.message, /resumeToken unknown/);
  assert.equal(pa.closed, true);
});
