// Simulcast through Mafalda with real peers: Chromium (mediasoup-client, unmodified) publishes
// a 720p camera as three VP8 simulcast layers; a second page consumes it and, through
// consumer.setPreferredLayers, switches the spatial layer it receives. The received
// resolution (frameWidth in the receiver's getStats) must follow: 320 px for layer 0, larger
// again for the top layer, frames decoded all along (no freeze at a switch), and
// consumer.layerschange must report the layer.
// MF_BROWSER_SVC=1: the same with VP9 SVC (one stream, L3T3_KEY) instead of simulcast.
// Usage: node simulcast.test.mjs <path/to/mafalda-node> <repo>/node/web
import { spawn } from 'node:child_process';
import { counters, launchChromium, log, openPage, stopChild, tail, waitFor, waitReceiving }
  from './lib.mjs';

const [nodeBin, webDir] = process.argv.slice(2);
if (!nodeBin || !webDir) {
  console.error('usage: node simulcast.test.mjs <mafalda-node> <web-dir>');
  process.exit(2);
}

const SVC = process.env.MF_BROWSER_SVC === '1';
let node = null;
let browser = null;
let nodeLog = '';

function startNode() {
  return new Promise((resolve, reject) => {
    node = spawn(nodeBin, ['--workers', '1', '--controller=false', '--rtc-listen-ip', '127.0.0.1',
      '--announced-ip', '127.0.0.1', '--rtc-port-base', '0', '--api-listen', '127.0.0.1:0',
      '--web-dir', webDir, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => reject(new Error('node did not log its demo URL in 20 s')), 20000);
    const onData = (chunk) => {
      nodeLog += chunk.toString();
      const m = nodeLog.match(/open (http:\/\/127\.0\.0\.1:\d+)\/app\//);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    node.stdout.on('data', onData);
    node.stderr.on('data', onData);
    node.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`mafalda-node exited early (code ${code}, signal ${sig})`));
    });
  });
}

async function aliceVideo(bob) {
  const s = await counters(bob);
  return (s.perConsumer || []).find((x) => x.kind === 'video');
}

// Waits until bob's video consumer decodes frames of width `pred` and keeps decoding.
async function waitWidth(bob, what, pred, timeoutMs) {
  const row = await waitFor(what, async () => {
    const v = await aliceVideo(bob);
    return { ok: !!v && pred(v.frameWidth), ...v };
  }, timeoutMs);
  const before = row.framesDecoded;
  const after = await waitFor(`${what}: frames still decoded`, async () => {
    const v = await aliceVideo(bob);
    return { ok: v.framesDecoded >= before + 30 && pred(v.frameWidth), ...v };
  }, 10000);
  log(`${what}: frameWidth ${after.frameWidth}x${after.frameHeight}, layers ${JSON.stringify(after.layers)}, ` +
      `framesDecoded ${after.framesDecoded}`);
  return after;
}

async function main() {
  const base = await startNode();
  log(`mafalda-node up at ${base}`);
  browser = await launchChromium();
  const room = `s${process.pid}`;
  const ctxA = await browser.newContext({ permissions: ['camera', 'microphone'] });
  const ctxB = await browser.newContext({ permissions: ['camera', 'microphone'] });
  const alice = await openPage(ctxA, base, room, 'alice', null, SVC ? 'svc=1' : 'simulcast=1');
  const bob = await openPage(ctxB, base, room, 'bob');
  await waitReceiving('bob', bob, 1);

  // What alice sends: Chromium decides how many layers its bandwidth estimate allows.
  let top;
  if (SVC) {
    const rows = (await alice.evaluate(() => window.mafalda.outbound())).filter((r) => r.kind === 'video');
    log(`alice sends VP9 SVC: ${rows.map((r) => `${r.frameWidth}x${r.frameHeight}@${r.framesPerSecond}`).join(', ')}`);
    const v0 = await waitFor('bob to decode more than the base layer', async () => {
      const v = await aliceVideo(bob);
      return { ok: !!v && v.frameWidth > 320, ...v };
    }, 30000);
    top = v0.frameWidth;
  } else {
    const out = await waitFor('alice to send at least two simulcast layers', async () => {
      const rows = (await alice.evaluate(() => window.mafalda.outbound())).filter((r) => r.kind === 'video');
      return { ok: rows.filter((r) => r.framesEncoded > 0).length >= 2, rows };
    }, 30000);
    log(`alice sends: ${out.rows.map((r) => `${r.frameWidth}x${r.frameHeight}@${r.framesPerSecond}`).join(', ')}`);
    top = Math.max(...out.rows.filter((r) => r.framesEncoded > 0).map((r) => r.frameWidth));
  }

  // Default preference: the highest layer alice sends.
  await waitWidth(bob, 'bob to receive the top layer', (w) => w >= top, 30000);

  const v = await aliceVideo(bob);
  const consumerId = v.consumerId;
  await bob.evaluate(([id]) => window.mafalda.setPreferredLayers(id, 0, 2), [consumerId]);
  const low = await waitWidth(bob, 'bob to receive layer 0 after setPreferredLayers(0)', (w) => w === 320, 20000);
  if (!low.layers || low.layers.spatialLayer !== 0) {
    throw new Error(`consumer.layerschange did not report spatial layer 0: ${JSON.stringify(low.layers)}`);
  }
  await bob.evaluate(([id]) => window.mafalda.setPreferredLayers(id, 2, 2), [consumerId]);
  const high = await waitWidth(bob, 'bob to receive the top layer again', (w) => w >= top, 20000);
  if (!high.layers || high.layers.spatialLayer < 1) {
    throw new Error(`consumer.layerschange did not report an upper layer: ${JSON.stringify(high.layers)}`);
  }
  // Temporal layers (mediasoup-client sends VP8 simulcast as L1T3): temporal layer 0 only
  // is a quarter of the frame rate; frames must keep decoding (picture ids stay continuous
  // for the receiver) and the full rate must come back.
  const rate = async (ms) => {
    const a = (await aliceVideo(bob)).framesDecoded;
    await new Promise((r) => setTimeout(r, ms));
    return ((await aliceVideo(bob)).framesDecoded - a) * 1000 / ms;
  };
  // (On the top layer alice really sends: below the preferred spatial layer, mediasoup's
  // rule gives every temporal layer.)
  const topLayer = high.layers.spatialLayer;
  const full = await rate(3000);
  await bob.evaluate(([id, l]) => window.mafalda.setPreferredLayers(id, l, 0), [consumerId, topLayer]);
  await new Promise((r) => setTimeout(r, 1000));
  const base0 = await rate(3000);
  log(`decoded frame rate: all temporal layers ${full.toFixed(1)}/s, temporal layer 0 ${base0.toFixed(1)}/s`);
  if (!(base0 > 0.5 && base0 < full * 0.7)) {
    throw new Error(`temporal layer 0 did not lower the frame rate (${full} -> ${base0} frames/s)`);
  }
  await bob.evaluate(([id]) => window.mafalda.setPreferredLayers(id, 2, 2), [consumerId]);
  await new Promise((r) => setTimeout(r, 1500));
  const back = await rate(3000);
  log(`decoded frame rate back with all temporal layers: ${back.toFixed(1)}/s`);
  if (!(back > base0 * 1.3)) throw new Error(`the frame rate did not come back (${base0} -> ${back})`);
  // A bad request gets a clear error, not a crash.
  const err = await bob.evaluate(([id]) => window.mafalda.setPreferredLayers(id, 'x').then(
    () => 'accepted', (e) => String(e.message)), [consumerId]);
  if (!/spatialLayer/.test(err)) throw new Error(`bad setPreferredLayers not refused clearly: ${err}`);
  log('PASS');
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.stack || e}`);
  console.error('--- mafalda-node log (tail) ---');
  console.error(tail(nodeLog, 60));
} finally {
  if (browser) await browser.close().catch(() => {});
  const status = await stopChild(node);
  if (status !== '0' && status !== 'not started') {
    failed = true;
    console.error(`FAIL: mafalda-node did not shut down cleanly on SIGTERM (status ${status})`);
    console.error(tail(nodeLog, 80));
  }
}
process.exit(failed ? 1 : 0);
