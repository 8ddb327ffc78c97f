/**
 * Requests to the proxy aborted half-way through their body. Issue 10: a
 * stack trace was logged for each (700 KB in 4 s). At most one line per
 * aborted request, rate-limited (at most ten lines of a kind a minute),
 * and no stack trace.
 */
import { connect } from 'node:net';
import { bounded, sleep, type Scenario } from '../scenario.js';
import { ATTACKER } from '../wire.js';

/**
 * What "rate-limited" is taken to mean: the throttle's own promise, at most
 * ten lines of a kind a minute (a refused connection, an aborted request and
 * an internal failure are three kinds), plus the one line a kind writes to
 * count what it left out.
 */
const LINES_PER_KIND_A_MINUTE = 10;
const KINDS = 3;

export const abortedRequests: Scenario = {
  name: 'aborted-requests',
  title: 'aborted requests to the proxy',
  counts: 'bytes the proxy logged (no grant: no rate)',
  caps: { short: { timeMs: 5000, count: 1500 }, full: { timeMs: 20_000, count: 3000 } },
  async prepare(env) {
    const out = env.proxy.child.output;
    const before = { ...out };
    return {
      async finish(report) {
        await sleep(1000); // what the proxy was still writing
        const bytes = out.bytes - before.bytes;
        const lines = out.lines - before.lines;
        const stackLines = out.stackLines - before.stackLines;
        const seconds = Number(report.detail.elapsedMs) / 1000;
        return {
          accepted: bytes,
          detail: { logBytes: bytes, logLines: lines, stackLines },
          checks: [
            { name: 'no stack traces logged', ok: stackLines === 0 },
            { name: 'at most one line per aborted request', ok: lines <= report.attempted },
            {
              name: 'log rate-limited',
              ok: lines <= (LINES_PER_KIND_A_MINUTE + 1) * KINDS * Math.max(1, Math.ceil(seconds / 60)),
            },
          ],
        };
      },
    };
  },
  async attack(env) {
    const { hostname, port, host } = new URL(env.proxy.url);
    let aborted = 0;
    env.started();
    const { runs, elapsedMs } = await bounded(env.caps, 32, async () => {
      await new Promise<void>((resolve) => {
        const socket = connect({ host: hostname, port: Number(port), localAddress: ATTACKER }, () => {
          socket.write(
            `PUT /register HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/jose\r\nContent-Length: 2048\r\n\r\n${'A'.repeat(512)}`,
          );
          // Half the body sent: then the connection is cut (reset), as a client that gave up would.
          setTimeout(() => {
            socket.resetAndDestroy();
            aborted++;
          }, 5);
        });
        socket.on('error', () => undefined);
        socket.on('close', () => resolve());
      });
    });
    return { attempted: runs, accepted: aborted, allowed: null, detail: { aborted, elapsedMs } };
  },
};
