// DataChannels through Mafalda with real peers: two Chromium pages (mediasoup-client,
// unmodified) join a room; alice opens an ordered reliable channel and an unordered one
// with maxRetransmits 0 (transport.produceData), bob consumes both (transport.consumeData).
// Messages must arrive: all of them, in order, on the ordered channel; on the unordered one
// (loopback loses nothing, but order is not promised) at least 90%, each one intact. A
// 100 KiB binary message (fragmented by SCTP) arrives whole. Closing alice's data producer
// reaches bob as dataConsumer.dataproducerclose.
// MF_BROWSER_SHARDED=1: 2 workers with the embedded controller and room for 3 transports
// per worker, so bob's receive transport (the 4th) lands on the other worker than alice's
// data producers: messages cross workers through the gateway's relay (asserted from the
// node's log).
// The page (datachannel/page.js) is bundled here with node/web's esbuild and
// mediasoup-client into a temporary --web-dir.
// Usage: node datachannel.test.mjs <path/to/mafalda-node> <repo>/node/web
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, launchChromium, log, spawnNode, stopChild, tail, waitFor } from './lib.mjs';

const [nodeBin, webDir] = process.argv.slice(2);
if (!nodeBin || !webDir) {
  console.error('usage: node datachannel.test.mjs <mafalda-node> <web-dir>');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const COUNT = 200;
const SHARDED = process.env.MF_BROWSER_SHARDED === '1';
const dataDir = `/tmp/mf-browser-dc-${process.pid}`;

let node = null;
let browser = null;
let nodeLogOf = () => '';
const pageDir = mkdtempSync(join(tmpdir(), 'mf-dc-'));

function buildPage() {
  const r = spawnSync(join(webDir, 'node_modules', '.bin', 'esbuild'),
    [join(here, 'datachannel', 'page.js'), '--bundle', '--format=iife', '--target=es2020',
      `--outfile=${join(pageDir, 'page.js')}`],
    { env: { ...process.env, NODE_PATH: join(webDir, 'node_modules') }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`esbuild failed: ${r.stderr || r.error}`);
  copyFileSync(join(here, 'datachannel', 'index.html'), join(pageDir, 'index.html'));
}

async function startNode() {
  const raftPort = SHARDED ? await freePort() : 0;
  const rpcPort = SHARDED ? await freePort() : 0;
  const mode = SHARDED
    ? ['--workers', '2', '--controller=true', '--gossip-port', '0', '--node-rpc-port', '0',
      '--worker-capacity-pps', '10000', '--transport-pps', '2400', '--data-dir', dataDir,
      '--controller-listen', `127.0.0.1:${raftPort}`, '--controller-rpc-listen', `127.0.0.1:${rpcPort}`]
    : ['--workers', '1', '--controller=false'];
  const h = await spawnNode(nodeBin, [...mode, '--web-dir', pageDir]);
  node = h.child;
  nodeLogOf = h.log;
  return h.base;
}

async function openPeer(context, base, name, errors) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') log(`${name} console: ${m.text()}`); });
  page.on('pageerror', (e) => { log(`${name} page error: ${e.message}`); errors.push(e.message); });
  await page.goto(`${base}/app/`);
  await page.waitForFunction(() => window.dc && window.dc.loaded, null, { timeout: 20000 });
  return page;
}

async function main() {
  buildPage();
  const base = await startNode();
  log(`node up at ${base}`);
  if (SHARDED) {
    await waitFor('the node to be active in its controller', async () => ({
      ok: /node \S+ is active/.test(nodeLogOf()) }), 20000);
  }
  browser = await launchChromium();
  const context = await browser.newContext();
  const errors = [];
  const alice = await openPeer(context, base, 'alice', errors);
  const bob = await openPeer(context, base, 'bob', errors);
  const room = `dc-${Date.now()}`;
  const joined = await alice.evaluate((r) => window.dc.join(r), room);
  await bob.evaluate((r) => window.dc.join(r), room);
  log(`joined; sctpParameters ${JSON.stringify(joined.sctpParameters)}`);
  if (joined.sctpParameters.port !== 5000 || joined.sctpParameters.maxMessageSize !== 262144)
    throw new Error(`unexpected sctpParameters ${JSON.stringify(joined.sctpParameters)}`);

  const chatId = await alice.evaluate(() => window.dc.produce('chat', { ordered: true }));
  const fastId = await alice.evaluate(() => window.dc.produce('fast', { ordered: false, maxRetransmits: 0 }));
  log(`alice produces data: chat ${chatId}, fast ${fastId}`);
  await waitFor('bob to hear of both data producers', async () => {
    const ev = await bob.evaluate(() => window.dc.events.filter((e) => e.event === 'newdataproducer').length);
    return { ok: ev >= 2, ev };
  }, 10000);
  const chat = await bob.evaluate((id) => window.dc.consume(id), chatId);
  const fast = await bob.evaluate((id) => window.dc.consume(id), fastId);
  log(`bob consumes: ${JSON.stringify(chat.sctpStreamParameters)} / ${JSON.stringify(fast.sctpStreamParameters)}`);
  if (!chat.sctpStreamParameters.ordered || fast.sctpStreamParameters.ordered ||
      fast.sctpStreamParameters.maxRetransmits !== 0)
    throw new Error('consumer reliability does not match the producers');

  const msgs = Array.from({ length: COUNT }, (_, i) => `msg ${i}`);
  await alice.evaluate((m) => window.dc.send('chat', m), msgs);
  await alice.evaluate(() => window.dc.sendBinary('chat', 100 * 1024));
  const got = await waitFor('bob to receive the ordered channel', async () => {
    const c = await bob.evaluate(() => window.dc.received('chat'));
    return { ok: c.length >= COUNT + 1, count: c.length, c };
  }, 20000);
  const expectChat = [...msgs, `binary:${100 * 1024}`];
  if (JSON.stringify(got.c) !== JSON.stringify(expectChat))
    throw new Error(`ordered channel: wrong content or order: ${JSON.stringify(got.c.slice(0, 10))}...`);
  log(`ordered: ${got.c.length} messages in order, incl. a 100 KiB binary one`);

  // The unordered channel may lose messages by contract (no retransmission): wait until
  // all arrived or nothing new came for 3 s, then ask the SFU where any went missing.
  await alice.evaluate((m) => window.dc.sendPaced('fast', m, 20, 20), msgs);
  let last = -1;
  let stableSince = Date.now();
  const fastDeadline = Date.now() + 20000;
  let fc = [];
  while (Date.now() < fastDeadline) {
    fc = await bob.evaluate(() => window.dc.received('fast'));
    if (fc.length >= COUNT) break;
    if (fc.length !== last) { last = fc.length; stableSince = Date.now(); }
    else if (Date.now() - stableSince > 3000) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const fastProducerStats = (await alice.evaluate((id) =>
    window.dc.request('dataProducer.getStats', { dataProducerId: id }), fastId)).stats[0];
  const fastConsumerStats = (await bob.evaluate((id) =>
    window.dc.request('dataConsumer.getStats', { dataConsumerId: id }), fast.id)).stats[0];
  log(`unordered: bob got ${fc.length}/${COUNT}; SFU received ${fastProducerStats.messagesReceived}, ` +
      `sent ${fastConsumerStats.messagesSent}, dropped ${fastConsumerStats.messagesDropped}`);
  const known = new Set(msgs);
  if (!fc.every((m) => known.has(m)) || new Set(fc).size !== fc.length)
    throw new Error('unordered channel: unknown or duplicated messages');
  if (fastConsumerStats.messagesSent < fc.length || fastProducerStats.messagesReceived < fc.length)
    throw new Error('unordered channel: the SFU counted fewer messages than bob received');
  // Paced on loopback, losing half would mean the SFU drops, not the network.
  if (fc.length < COUNT / 2)
    throw new Error(`unordered channel: only ${fc.length}/${COUNT} messages arrived`);

  const sctpStates = await alice.evaluate(() => window.dc.events.filter((e) => e.event === 'sctpstatechange')
    .map((e) => e.data.sctpState));
  log(`alice sctpstatechange events: ${JSON.stringify(sctpStates)}`);
  if (!sctpStates.includes('connected')) throw new Error('no transport.sctpstatechange connected');

  await alice.evaluate(() => window.dc.closeProducer('chat'));
  await waitFor('bob to get dataConsumer.dataproducerclose', async () => {
    const ev = await bob.evaluate(() => window.dc.events.filter((e) => e.event === 'dataproducerclose'));
    return { ok: ev.length === 1 && ev[0].target === chat.id, ev };
  }, 10000);
  log('dataproducerclose reached the consumer');
  if (SHARDED && !/relay copy of data producer/.test(nodeLogOf()))
    throw new Error('sharded: the data producer was never relayed to another worker');
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.stack || e}`);
  console.error(`--- node log (tail) ---\n${tail(nodeLogOf(), 60)}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  const status = await stopChild(node);
  log(`mafalda-node exit status: ${status}`);
  if (!failed && status !== '0') {
    failed = true;
    console.error(`FAIL: mafalda-node did not shut down cleanly (${status})\n${tail(nodeLogOf(), 40)}`);
  }
  rmSync(pageDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
}
console.log(failed ? 'datachannel test FAILED' : 'datachannel test passed');
process.exit(failed ? 1 : 0);
