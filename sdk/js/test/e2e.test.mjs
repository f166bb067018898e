// End to end: an app server written with the SDK (app_server.mjs) serves the demo page
// (node/web, mediasoup-client) and its signalling; two Chromium pages join and must decode
// each other's video and receive audio; when one leaves, the other's tiles go. The SDK's
// media-driven events (ICE/DTLS states, scores, producerclose) are checked on the way.
// Skipped when Chromium, playwright-core or the built demo page is missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO, mintToken, startNode, waitFor } from './helpers.mjs';
import { startAppServer } from './app_server.mjs';

const CHROMIUM = process.env.MF_CHROMIUM || '/usr/bin/chromium';
const WEB_DIR = path.join(REPO, 'node/web');
let chromium = null;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) { /* skip below */ }
const skip = !existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM}`
  : !chromium ? 'playwright-core is not installed (npm ci in sdk/js)'
    : !existsSync(path.join(WEB_DIR, 'dist/app.js')) ? 'node/web/dist/app.js is not built'
      : false;

let node;
let app;
let browser;

before(async () => {
  if (skip) return;
  node = await startNode();
  app = await startAppServer({ url: node.url, token: mintToken(), webDir: WEB_DIR, roomId: `e2e-${process.pid}` });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
      '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
      '--disable-dev-shm-usage'],
  });
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (app) await app.stop().catch(() => {});
  if (node) {
    const status = await node.stop();
    assert.equal(status, '0', `mafalda-node did not stop cleanly:\n${node.log().split('\n').slice(-40).join('\n')}`);
  }
});

async function counters(page) {
  return page.evaluate(async () => {
    const m = window.mafalda;
    if (!m) return { loaded: false };
    return { ready: m.ready, error: m.error, tiles: m.tiles(), perConsumer: await m.perConsumer() };
  });
}

async function receiving(page, peers) {
  let last;
  await waitFor(`a page to receive ${peers} peer(s)`, async () => {
    last = await counters(page);
    if (last.error) throw new Error(`page error: ${last.error}`);
    const list = last.perConsumer || [];
    const video = list.filter((x) => x.kind === 'video');
    const audio = list.filter((x) => x.kind === 'audio');
    return last.ready && last.tiles === peers && video.length === peers && audio.length === peers &&
      video.every((x) => x.framesDecoded >= 30) && audio.every((x) => x.packetsReceived > 0);
  }, 60000).catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(last)}`); });
  return last;
}

test('two Chromium pages see each other through an SDK app server', { skip }, async () => {
  const ctx = [];
  for (let i = 0; i < 2; i++) ctx.push(await browser.newContext({ permissions: ['camera', 'microphone'] }));
  const pages = [];
  for (const [i, name] of ['alice', 'bob'].entries()) {
    const page = await ctx[i].newPage();
    page.on('pageerror', (e) => console.log(`${name} page error: ${e.message}`));
    await page.goto(`${app.base}/app/?room=ignored&name=${name}`);
    pages.push(page);
  }
  const a = await receiving(pages[0], 1);
  const b = await receiving(pages[1], 1);
  console.log(`alice decoded ${a.perConsumer.map((x) => `${x.kind}:${x.framesDecoded || x.packetsReceived}`)}; ` +
    `bob ${b.perConsumer.map((x) => `${x.kind}:${x.framesDecoded || x.packetsReceived}`)}`);

  // what the SDK reported to the app server while media flowed
  const ev = app.events;
  assert.ok(ev.some((e) => /^ice (connected|completed)$/.test(e)), ev.join());
  assert.ok(ev.includes('dtls connecting') || ev.includes('dtls connected'), ev.join());
  assert.ok(ev.includes('dtls connected'), ev.join());
  // scores change only with loss (none on loopback): their mapping is in api.test.mjs
  console.log(`SDK events at the app server: ${[...new Set(ev)].join(', ')}`);
  // stats through the SDK: the app server's consumers send media
  const consumers = [];
  for (const t of app.router._transports.values()) for (const c of t._consumers.values()) consumers.push(c);
  assert.equal(consumers.length, 4);
  const stats = await Promise.all(consumers.map((c) => c.getStats()));
  assert.ok(stats.every((s) => s[0].packetCount > 0), JSON.stringify(stats.map((s) => s[0].packetCount)));

  // bob leaves: his transports close, alice's consumers get producerclose, tiles go
  await ctx[1].close();
  await waitFor("alice to drop bob's tile", async () => (await counters(pages[0])).tiles === 0, 10000);
  assert.equal(ev.filter((e) => e === 'consumer producerclose').length, 2, ev.join());
  await ctx[0].close();
});
