/**
 * Thousands of calls, each claiming a different `iss` and `addr`, each
 * passing a pid that the node then messages. Issue 10: +92 KB of node
 * memory per call, never freed (≈ 3 GB an hour at 10/s): the per-peer
 * route map only grew. The grant here allows 1,000/s, to see in seconds
 * what 10/s does in an hour: node RSS must stay under its ceiling, and the
 * heap retained per call (after a full collection), times an hour of calls
 * at 10/s, too.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bounded, tally, type Scenario } from '../scenario.js';
import { ATTACKER, RawHttp, encodeArgs, grantKey, newRawKey, replyOf, signedCall } from '../wire.js';

/** What is retained per call, times this, must fit in the node's ceiling: a map that only grows fails in seconds. */
const AN_HOUR_AT_10_PER_S = 36_000;
/** Ports the attacker's sinks listen on. */
const SINKS = 200;

interface Heap {
  heapUsed: number;
  external: number;
  rss: number;
}

export const manyIssuers: Scenario = {
  name: 'many-issuers',
  title: 'calls each claiming a different iss and addr',
  counts: 'calls the node ran (the grant allows 1,000/s: this one is about memory)',
  caps: { short: { timeMs: 8000, count: 3000 }, full: { timeMs: 60_000, count: 20_000 } },
  rate: { count: 1000, intervalMs: 1000, burst: 1000 },
  async prepare(env) {
    const before = await env.node.child.request<Heap>('heap');
    return {
      async finish(report) {
        const after = await env.node.child.request<Heap>('heap');
        const retained = after.heapUsed + after.external - (before.heapUsed + before.external);
        const perCall = retained / Math.max(1, report.attempted);
        return {
          checks: [{ name: 'an hour at 10/s fits in 256 MB', ok: perCall * AN_HOUR_AT_10_PER_S <= 256e6 }],
          detail: {
            retainedMb: +(retained / 1e6).toFixed(1),
            retainedKbPerCall: +(perCall / 1024).toFixed(2),
            rssGrowthMb: +((after.rss - before.rss) / 1e6).toFixed(1),
          },
        };
      },
    };
  },
  async attack(env) {
    // Where the node's messages to the claimed pids go while it still follows `addr`: sinks of the
    // attacker's, on as many ports (each a peer of its own to the node's HTTP client).
    const sinks = await Promise.all(
      Array.from({ length: SINKS }, async () => {
        const sink = createServer((req, res) => {
          req.resume();
          res.statusCode = 204;
          res.end();
        });
        await new Promise<void>((resolve) => sink.listen(0, ATTACKER, () => resolve()));
        return sink;
      }),
    );
    const ports = sinks.map((s) => (s.address() as AddressInfo).port);
    const http = new RawHttp(ATTACKER);
    const key = grantKey(env.grant);
    const path = '/apply/Greeter/countdown';
    const outcomes: Record<string, number> = {};
    let ran = 0;
    try {
      env.started();
      const { runs, elapsedMs } = await bounded(env.caps, 16, async (i) => {
        const iss = newRawKey().id;
        const args = encodeArgs([{ node: iss, id: 1, token: `t${i}` }, 1], [0]);
        const addr = `http://${ATTACKER}:${ports[i % SINKS]}/peer-${i}`;
        const res = await http.put(
          `${env.node.url}${path}`,
          signedCall(key, { aud: env.node.id, iss }, path, args, { addr }),
        );
        const reply = res.status === 200 ? replyOf(res.text) : undefined;
        if (reply !== undefined && reply.error === undefined) ran++;
        tally(
          outcomes,
          reply === undefined ? (res.code ?? res.failure ?? `HTTP ${res.status}`) : (reply.error ?? 'ok'),
        );
      });
      return { attempted: runs, accepted: ran, allowed: null, detail: { outcomes, elapsedMs } };
    } finally {
      http.close();
      for (const sink of sinks) {
        sink.closeAllConnections();
        sink.close();
      }
    }
  },
};
