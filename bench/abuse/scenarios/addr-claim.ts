/**
 * A call whose signed claims name another URL in `addr`: Alice's node must
 * never open a connection to an address a request named. Issue 10: one call
 * of the README's countdown made Alice PUT 1,000 signed requests to
 * `http://127.0.0.1:P/internal/api?q=/pid/1` within 0.7 s. Here a listener
 * on 127.0.0.3 (a third machine) counts the connections it receives: 0.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Greeter } from '../../../samples/greeter.js';
import { bounded, sleep, tally, type Scenario } from '../scenario.js';
import { ATTACKER, RawHttp, THIRD, encodeArgs, grantKey, newRawKey, replyOf, signedCall } from '../wire.js';

export const addrClaim: Scenario = {
  name: 'addr-claim',
  title: "a call whose signed addr names a third machine's URL",
  counts: 'connections a listener on 127.0.0.3 received (none may)',
  caps: { short: { timeMs: 4000, count: 200 }, full: { timeMs: 30_000, count: 1000 } },
  async prepare() {
    let connections = 0;
    let requests = 0;
    const server = createServer((req, res) => {
      requests++;
      req.resume();
      res.statusCode = 204;
      res.end();
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, THIRD, () => resolve()));
    const port = (server.address() as AddressInfo).port;
    return {
      params: { addr: `http://${THIRD}:${port}/internal/api?q=` },
      async finish() {
        await sleep(1000); // what the node was still sending
        return { accepted: connections, allowed: 0, detail: { connections, requests } };
      },
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  },
  async attack(env) {
    const http = new RawHttp(ATTACKER);
    const key = grantKey(env.grant);
    const iss = newRawKey().id;
    const path = '/apply/Greeter/countdown';
    const outcomes: Record<string, number> = {};
    let ran = 0;
    env.started();
    const { runs, elapsedMs } = await bounded(
      env.caps,
      1,
      async () => {
        const pid = { node: iss, id: 1, token: 'mallory' };
        const args = encodeArgs([pid, Greeter.MAX_COUNTDOWN], [0]);
        const jws = signedCall(key, { aud: env.node.id, iss }, path, args, { addr: env.params.addr });
        const res = await http.put(`${env.node.url}${path}`, jws);
        const reply = res.status === 200 ? replyOf(res.text) : undefined;
        if (reply !== undefined && reply.error === undefined) ran++;
        tally(outcomes, reply === undefined ? (res.code ?? `HTTP ${res.status}`) : (reply.error ?? 'ok'));
      },
      50,
    );
    http.close();
    return { attempted: runs, accepted: ran, allowed: 0, detail: { callsRun: ran, outcomes, elapsedMs } };
  },
};
