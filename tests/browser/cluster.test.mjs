// Browser test of ONE room over TWO mafalda-node processes (issue 8's cluster with real peers).
// Usage: node cluster.test.mjs <mafalda-node> <repo>/node/web <mafalda-controller> [mafalda-ctl]
// A mafalda-controller (single voter, gossip on) and two nodes joined to it through gossip:
// node 1 on 127.0.0.1, node 2 on 127.0.0.2 (every address of the node). alice opens the demo
// page on node 1, bob and carol on node 2, one room: every page must decode every other
// page's video and receive its audio, so media crosses the nodes over PipeTransports (node
// RPC PipeOpen, SRTP) into both workers of node 2 (2 workers per node, a capacity that fits
// 3 transports per worker). /metrics must show the node pipes (node_pipes_in/out); carol leaving
// must remove her tiles on both nodes; kill -9 of node 2 must remove bob's tiles in alice's
// page once gossip declares node 2 dead; node 1 and the controller must stop cleanly.
import { counters, launchChromium, log, openPage, sum, waitFor, waitReceiving,
  workerGauges } from './lib.mjs';
import { createCluster } from './cluster_lib.mjs';

const [nodeBin, webDir, ctlBin, ctlCliBin] = process.argv.slice(2);
if (!nodeBin || !webDir || !ctlBin) {
  console.error('usage: node cluster.test.mjs <mafalda-node> <web-dir> <mafalda-controller> [mafalda-ctl]');
  process.exit(2);
}
const NODE_IPS = ['127.0.0.1', '127.0.0.2'];
const cluster = createCluster({ nodeBin, webDir, ctlBin, ctlCliBin, tag: 'cluster' });
const ctl = cluster.ctl;
let browser = null;

// 2 workers, capacity 10000 pps at an 80% watermark, 2400 pps expected per transport:
// 3 transports fit a worker, so node 2's four (bob's and carol's) spread over both
// workers and alice's producers are piped into each of them from node 1. Every page's
// transports stay on the node it talks to (--forward-transports=false): what crosses the
// nodes here is media, through PipeTransports (forward.test.mjs covers forwarding).
const startNode = (i) => cluster.startNode(`node ${i}`, NODE_IPS[i - 1], ['--workers', '2',
  '--worker-capacity-pps', '10000', '--transport-pps', '2400', '--pipe-linger-ms', '1000',
  '--forward-transports=false']);

// Ids of the producers a page publishes (tiles of remote
// producers are told apart by producer id).
const producersOf = (page) => page.evaluate(() => window.mafalda.producers());

async function nodeGauges(p) {
  const g = await workerGauges(p.base);
  return { in: sum(g.node_pipes_in), out: sum(g.node_pipes_out), g };
}

async function main() {
  await cluster.startController();
  log(`controller: rpc ${cluster.ctlRpc}, gossip ${cluster.gossip}`);
  const n1 = await startNode(1);
  const n2 = await startNode(2);
  log(`both nodes active: node 1 = ${n1.nodeId} at ${n1.base}, node 2 = ${n2.nodeId} at ${n2.base}`);

  browser = await launchChromium();
  log(`chromium ${browser.version()}`);
  const ctx = [];
  for (let i = 0; i < 3; i++) ctx.push(await browser.newContext({ permissions: ['camera', 'microphone'] }));

  // Chromium must load a page from 127.0.0.2 (loopback /8) for node 2 to be on its own address.
  {
    const probe = await ctx[2].newPage();
    const resp = await probe.goto(`${n2.base}/metrics`);
    if (!resp || !resp.ok()) throw new Error(`chromium cannot load ${n2.base}/metrics (${resp && resp.status()})`);
    await probe.close();
    log(`chromium loads pages from ${NODE_IPS[1]}`);
  }

  const room = `c${process.pid}`;
  const aliceErrors = [];
  const alice = await openPage(ctx[0], n1.base, room, 'alice', aliceErrors);
  const bob = await openPage(ctx[1], n2.base, room, 'bob');
  await waitReceiving('alice (node 1)', alice, 1);
  await waitReceiving('bob (node 2)', bob, 1);
  const carol = await openPage(ctx[2], n2.base, room, 'carol');
  await waitReceiving('carol (node 2, late)', carol, 2);
  await waitReceiving('alice (node 1)', alice, 2);
  await waitReceiving('bob (node 2)', bob, 2);

  // Node 1 gets bob's and carol's audio+video from node 2; alice's two go to BOTH workers
  // of node 2 (one pipe transport pair per worker pair).
  const want = { 'node 1': { in: 4, out: 4 }, 'node 2': { in: 4, out: 4 } };
  for (const n of [n1, n2]) {
    const g = await waitFor(`${n.name}'s node pipes`, async () => {
      const x = await nodeGauges(n);
      return { ok: x.in >= want[n.name].in && x.out >= want[n.name].out, ...x };
    }, 5000);
    log(`${n.name}: node_pipes_in ${g.in} [${g.g.node_pipes_in}], node_pipes_out ${g.out} ` +
        `[${g.g.node_pipes_out}], transports [${g.g.transports}], pipes_in [${g.g.pipes_in}]`);
    if (n === n2 && !(g.g.transports[0] > 0 && g.g.transports[1] > 0)) {
      throw new Error(`node 2's transports did not spread over its workers: [${g.g.transports}]`);
    }
  }

  // The controller records exactly the pipes the nodes have open: every intra-node and
  // every node pipe, the cross-node ones with their source on the other node.
  if (ctlCliBin) {
    const open = { all: 0, cross: 0 };
    for (const n of [n1, n2]) {
      const x = await workerGauges(n.base);
      open.all += sum(x.pipes_in) + sum(x.node_pipes_in);
      open.cross += sum(x.node_pipes_in);
    }
    const rec = await waitFor('the controller to record every open pipe', async () => {
      let list;
      try {
        const j = JSON.parse(await ctl('pipes', '--json'));
        list = Array.isArray(j) ? j : j.pipes;
      } catch { return { ok: false }; }
      const cross = list.filter((x) => x.source_node_id !== x.target_node_id).length;
      return { ok: list.length === open.all && cross === open.cross, all: list.length, cross };
    }, 5000);
    log(`controller state: ${rec.all} pipes (${rec.cross} between the nodes), as the nodes report`);
  }

  const rates = await alice.evaluate(() => [...document.querySelectorAll('.tile.remote .rate')]
    .map((e) => e.textContent));
  log(`alice's tiles show: ${rates.join(' | ')}`);

  const bobProducers = await producersOf(bob);
  const carolProducers = await producersOf(carol);
  const hasAny = (s, ids) => (s.perConsumer || []).some((x) => ids.includes(x.producerId));

  // carol leaves: her producers close on node 2, node 1 hears it through node.RoomEvent.
  const leftAt = Date.now();
  await ctx[2].close();
  for (const [name, page] of [['alice', alice], ['bob', bob]]) {
    await waitFor(`${name} to drop carol's tiles`, async () => {
      const s = await counters(page);
      return { ok: s.tiles === 1 && !hasAny(s, carolProducers), tiles: s.tiles };
    }, Math.max(0, 5000 - (Date.now() - leftAt)));
  }
  log(`carol's tiles gone in alice (node 1) and bob (node 2) ${Date.now() - leftAt} ms after closing her page`);

  // kill -9 node 2: node 1 closes its producers when gossip declares it dead.
  const killedAt = Date.now();
  cluster.kill9(n2);
  await waitFor('alice to drop bob\'s tiles after node 2 died', async () => {
    const s = await counters(alice);
    if (s.error) throw new Error(`alice: page error: ${s.error}`);
    return { ok: s.tiles === 0 && !hasAny(s, bobProducers), tiles: s.tiles };
  }, 15000);
  log(`bob's tiles gone in alice ${Date.now() - killedAt} ms after kill -9 of node 2`);
  const s = await counters(alice);
  if (s.error || aliceErrors.length || !s.ready) {
    throw new Error(`alice's page is not healthy: error ${s.error}, page errors ${JSON.stringify(aliceErrors)}`);
  }
  const after = await nodeGauges(n1);
  log(`alice healthy (ready, no page error); node 1 now: node_pipes_in ${after.in}, ` +
      `node_pipes_out ${after.out}, transports [${after.g.transports}]`);
  if (ctlCliBin) {
    await new Promise((r) => setTimeout(r, 500)); // the leader commits dead every 250 ms
    log(`mafalda-ctl status:\n${(await ctl('status')).trimEnd()}`);
    log(`mafalda-ctl nodes:\n${(await ctl('nodes')).trimEnd()}`);
  }
  log('PASS (media crossed both nodes, tiles follow leaves and node death)');
}

await cluster.run(main, () => browser);
