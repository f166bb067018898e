// Browser test of relay trees between nodes (issue 8): with --max-pipes-out 1 on the
// controller, a worker sends each producer to ONE other shard; the third node gets it from
// a node that already receives it (controller.PlacePipe picks the relay).
// Usage: node relay.test.mjs <mafalda-node> <repo>/node/web <mafalda-controller> [mafalda-ctl]
// alice, bob and carol open the demo page on nodes 1, 2 and 3 (one worker each): every page
// must decode every other page, some pipes must come from relays (their source is not the
// producer's origin, in the nodes' logs and in the controller's pipe records), and when carol
// leaves the pipes into node 3 close after the linger while alice and bob keep decoding.
import { counters, launchChromium, log, openPage, waitFor, waitReceiving } from './lib.mjs';
import { createCluster } from './cluster_lib.mjs';

const [nodeBin, webDir, ctlBin, ctlCliBin] = process.argv.slice(2);
if (!nodeBin || !webDir || !ctlBin || !ctlCliBin) {
  console.error('usage: node relay.test.mjs <mafalda-node> <web-dir> <mafalda-controller> <mafalda-ctl>');
  process.exit(2);
}
const cluster = createCluster({ nodeBin, webDir, ctlBin, ctlCliBin, tag: 'relay',
  controllerArgs: ['--max-pipes-out', '1'] });
// Every page's transports on its own node (no forwarding): the pipes are what is tested.
const NODE_ARGS = ['--workers', '1', '--pipe-linger-ms', '1000', '--forward-transports=false'];
let browser = null;

async function pipes() {
  try {
    const j = JSON.parse(await cluster.ctl('pipes', '--json'));
    return Array.isArray(j) ? j : j.pipes;
  } catch { return null; }
}

async function main() {
  await cluster.startController();
  const nodes = [];
  for (const [i, ip] of [[1, '127.0.0.1'], [2, '127.0.0.2'], [3, '127.0.0.3']])
    nodes.push(await cluster.startNode(`node ${i}`, ip, NODE_ARGS));
  browser = await launchChromium();
  const ctx = [];
  for (let i = 0; i < 3; i++) ctx.push(await browser.newContext({ permissions: ['camera', 'microphone'] }));
  const room = `r${process.pid}`;
  const names = ['alice', 'bob', 'carol'];
  const pages = [];
  for (let i = 0; i < 3; i++) {
    pages.push(await openPage(ctx[i], nodes[i].base, room, names[i]));
    // one at a time: each page's producers are piped to the nodes already there
    if (i > 0) await waitReceiving(`${names[i]} (node ${i + 1})`, pages[i], i);
  }
  for (let i = 0; i < 3; i++) await waitReceiving(`${names[i]} (node ${i + 1})`, pages[i], 2);

  const relayed = nodes.map((n) => (n.out.match(/relayed from node/g) || []).length);
  log(`pipes opened from a relay, per node: [${relayed}]`);
  if (relayed.reduce((a, b) => a + b, 0) === 0) throw new Error('no pipe came from a relay');
  const origin = {};
  for (let i = 0; i < 3; i++) {
    for (const id of await pages[i].evaluate(() => window.mafalda.producers())) origin[id] = nodes[i].nodeId;
  }
  const rec = await waitFor('the controller to record every pipe (6 producers x 2 nodes)', async () => {
    const list = await pipes();
    return { ok: !!list && list.length === 12, list };
  }, 5000);
  const viaRelay = rec.list.filter((p) => origin[p.producer_id] &&
    p.source_node_id !== origin[p.producer_id]);
  log(`controller: ${rec.list.length} pipes, ${viaRelay.length} fed by a relay`);
  if (viaRelay.length === 0) throw new Error('the controller records no relayed pipe');
  for (const n of nodes) {
    const sends = {};
    for (const p of rec.list) {
      if (p.source_node_id !== n.nodeId) continue;
      sends[p.producer_id] = (sends[p.producer_id] || 0) + 1;
    }
    const most = Math.max(0, ...Object.values(sends));
    if (most > 1) throw new Error(`${n.name} sends one producer to ${most} nodes (budget 1)`);
  }
  log('no node sends a producer to more than one other node (the budget)');

  // carol leaves: the pipes into node 3 close after the linger; alice and bob keep media.
  await ctx[2].close();
  await waitFor('pipes into node 3 to close', async () => {
    const list = await pipes();
    return { ok: !!list && list.length === 4 && list.every((p) => p.target_node_id !== nodes[2].nodeId),
             n: list && list.length };
  }, 15000);
  for (const [i, page] of [[0, pages[0]], [1, pages[1]]]) {
    await waitFor(`${names[i]} to keep one peer`, async () => {
      const s = await counters(page);
      if (s.error) throw new Error(`${names[i]}: ${s.error}`);
      return { ok: s.tiles === 1 };
    }, 10000);
  }
  await waitReceiving('alice after carol left', pages[0], 1);
  await waitReceiving('bob after carol left', pages[1], 1);
  log('PASS (a relay tree fed node 3; pipes closed behind carol)');
}

await cluster.run(main, () => browser);
