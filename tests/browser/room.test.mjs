// Browser interop test: Debian's chromium (driven by playwright-core) runs the demo page
// (node/web, mediasoup-client unmodified) against a real mafalda-node on loopback.
// Usage: node room.test.mjs <path/to/mafalda-node> <repo>/node/web
// Two pages join one room and must decode each other's video and receive audio; a third
// joins late and receives both; closing one page must remove its tiles in the others.
// MF_BROWSER_SHARDED=1: the node runs 2 workers with the embedded controller and a
// capacity that fits 3 transports per worker, so the room spreads over both workers and
// media crosses intra-node pipes; /metrics must show both workers in use and pipes open,
// and the pipes must close when the pages leave (after the 1 s linger).
import { rmSync } from 'node:fs';
import { counters, freePort, launchChromium, log, openPage, spawnNode, stopChild, sum, waitFor,
  waitReceiving, workerGauges } from './lib.mjs';

const [nodeBin, webDir] = process.argv.slice(2);
if (!nodeBin || !webDir) {
  console.error('usage: node room.test.mjs <mafalda-node> <web-dir>');
  process.exit(2);
}
const SHARDED = process.env.MF_BROWSER_SHARDED === '1';

let node = null;
let browser = null;
let nodeLogOf = () => '';

async function startNode() {
  // The embedded controller's Raft and RPC ports: free ones, not the 7000/7001 defaults
  // another process on the machine may hold.
  const raftPort = SHARDED ? await freePort() : 0;
  const rpcPort = SHARDED ? await freePort() : 0;
  // Sharded: capacity 10000 pps per worker, watermark 80%, 2400 pps expected per
  // transport: 3 transports fit a worker (7200 + measured load stays under 8000).
  const mode = SHARDED
    ? ['--workers', '2', '--controller=true', '--gossip-port', '0', '--node-rpc-port', '0',
      '--worker-capacity-pps', '10000', '--transport-pps', '2400', '--pipe-linger-ms', '1000',
      '--data-dir', `/tmp/mf-browser-${process.pid}`,
      '--controller-listen', `127.0.0.1:${raftPort}`, '--controller-rpc-listen', `127.0.0.1:${rpcPort}`]
    : ['--workers', '1', '--controller=false'];
  const h = await spawnNode(nodeBin, [...mode, '--web-dir', webDir]);
  node = h.child;
  nodeLogOf = h.log;
  return h.base;
}

// SIGTERM, then SIGKILL after 10 s; resolves to the exit status ('0' = clean shutdown).
const stopNode = () => stopChild(node);

async function main() {
  const base = await startNode();
  log(`mafalda-node up at ${base}`);
  if (SHARDED) {
    // Placement needs the node registered and active in its embedded controller.
    await waitFor('the node to be active in its controller', async () => ({
      ok: /node \S+ is active/.test(nodeLogOf()) }), 20000);
  }
  browser = await launchChromium();
  log(`chromium ${browser.version()}`);
  const room = `t${process.pid}`;
  // One context per participant: separate pages as separate users.
  const ctx = [];
  for (let i = 0; i < 3; i++) ctx.push(await browser.newContext({ permissions: ['camera', 'microphone'] }));

  const alice = await openPage(ctx[0], base, room, 'alice');
  const bob = await openPage(ctx[1], base, room, 'bob');
  await waitReceiving('alice', alice, 1);
  await waitReceiving('bob', bob, 1);

  const carol = await openPage(ctx[2], base, room, 'carol');
  await waitReceiving('carol (late)', carol, 2);
  await waitReceiving('alice', alice, 2);
  await waitReceiving('bob', bob, 2);

  if (SHARDED) {
    const g = await workerGauges(base);
    log(`workers: transports [${g.transports}], pipes in [${g.pipes_in}], out [${g.pipes_out}]`);
    if (!(g.transports[0] > 0 && g.transports[1] > 0)) {
      throw new Error(`the room did not spread over both workers: transports [${g.transports}]`);
    }
    if (sum(g.pipes_in) < 2 || sum(g.pipes_in) !== sum(g.pipes_out)) {
      throw new Error(`expected open pipes between the workers: in [${g.pipes_in}] out [${g.pipes_out}]`);
    }
  }

  // The per-stream bitrate the tiles show (updated every second from getStats).
  const rates = await alice.evaluate(() => [...document.querySelectorAll('.tile.remote .rate')]
    .map((e) => e.textContent));
  log(`alice's tiles show: ${rates.join(' | ')}`);

  const closedAt = Date.now();
  await ctx[1].close(); // bob leaves: his page (and WebSocket) goes away
  for (const [name, page] of [['alice', alice], ['carol', carol]]) {
    await waitFor(`${name} to drop bob's tile`, async () => {
      const s = await counters(page);
      const audio = (s.perConsumer || []).filter((x) => x.kind === 'audio').length;
      return { ok: s.tiles === 1 && audio === 1, tiles: s.tiles, audio };
    }, 5000 - (Date.now() - closedAt));
  }
  log(`bob's tiles gone in alice and carol ${Date.now() - closedAt} ms after closing his page`);
  if (SHARDED) {
    await ctx[2].close(); // carol leaves too: alice is alone, every pipe must close
    const g = await waitFor('every pipe to close after the linger', async () => {
      const x = await workerGauges(base);
      return { ok: sum(x.pipes_in) === 0 && sum(x.pipes_out) === 0, ...x };
    }, 10000);
    log(`alone in the room: pipes in [${g.pipes_in}], transports [${g.transports}]`);
  }
  log('PASS');
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.stack || e}`);
  console.error('--- mafalda-node log (tail) ---');
  console.error(nodeLogOf().split('\n').slice(-60).join('\n'));
} finally {
  if (browser) await browser.close().catch(() => {});
  const status = await stopNode();
  if (status !== '0' && status !== 'not started') {
    // A sanitizer report or a hung shutdown shows here.
    failed = true;
    console.error(`FAIL: mafalda-node did not shut down cleanly on SIGTERM (status ${status})`);
    console.error(nodeLogOf().split('\n').slice(-80).join('\n'));
  } else if (status === '0') {
    log('mafalda-node stopped cleanly');
  }
}
if (SHARDED) rmSync(`/tmp/mf-browser-${process.pid}`, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
