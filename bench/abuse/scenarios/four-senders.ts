/**
 * Four free registrations flooding one node's queue at the proxy with
 * messages nobody signed (under the id of a grant Alice made: the
 * attacker holds one).
 * Issue 10: her queue filled and honest senders got `queue_full`; a
 * destination should queue only what its ping says it accepts, with a
 * share per sender. Honest calls through the proxy must still get through.
 */
import { randomBytes } from 'node:crypto';
import { bounded, tally, type Scenario } from '../scenario.js';
import { ATTACKER, RawHttp, RawProxyClient, TYP, fakeJws, messageId, type RelayedIn } from '../wire.js';

const SENDERS = 4;
/** The proxy's default message TTL, which its answers to the four live for. */
const PROXY_TTL_MS = 60_000;
const BATCH = 100;
const PADDING = randomBytes(1500).toString('base64url');

export const fourSenders: Scenario = {
  name: 'four-senders',
  title: "four free registrations flooding one node's queue",
  counts: 'messages the proxy queued for Alice from the four (no grant of hers: no rate)',
  caps: { short: { timeMs: 5000, count: 40_000 }, full: { timeMs: 40_000, count: 400_000 } },
  disk: true,
  async attack(env) {
    const http = new RawHttp(ATTACKER, 256);
    try {
      const senders: RawProxyClient[] = [];
      for (let i = 0; i < SENDERS; i++) {
        const { client, res } = await RawProxyClient.register(http, env.proxy, `free${i}@example.org`, `free${i}`);
        if (res.status !== 200) throw new Error(`a free registration was refused: ${res.status} ${res.text}`);
        senders.push(client);
      }
      // Her accepted ids are no longer published; the strongest attacker holds a grant of hers
      // (the 10/s one) and signs nothing: the proxy reads only the key id.
      await senders[0]!.ping({ name: 'free0' });
      const kid = env.grant.kid;
      const expS = Math.floor(Date.now() / 1000) + Math.ceil(env.caps.timeMs / 1000) + 1;
      const outcomes: Record<string, number> = {};
      let queued = 0;
      let sent = 0;
      env.started();
      const t0 = Date.now();
      const workers = senders.flatMap((s) => [s, s]);
      await Promise.all(
        workers.map(async (sender) => {
          let ack: string[] = [];
          const caps = {
            timeMs: env.caps.timeMs - (Date.now() - t0),
            count: Math.ceil(env.caps.count / workers.length / BATCH),
          };
          await bounded(caps, 1, async () => {
            const messages = Array.from({ length: BATCH }, () => ({
              id: messageId(),
              kind: 'request',
              to: env.node.id,
              path: '/apply/Greeter/hello',
              jws: fakeJws({ typ: TYP.call, kid }, { aud: env.node.id, iss: sender.id, exp: expS, pad: PADDING }),
            }));
            sent += messages.length;
            const r = await sender.poll({ ack, messages }, { timeoutMs: 2000 });
            for (const x of r.results) {
              if (x.error === undefined) queued++;
              tally(outcomes, x.error?.code ?? 'queued');
            }
            if (r.res.status !== 200) tally(outcomes, r.res.code ?? r.res.failure ?? `HTTP ${r.res.status}`);
            ack = r.messages.map((m: RelayedIn) => m.id);
          });
        }),
      );
      return {
        attempted: sent,
        accepted: queued,
        allowed: null,
        // What the attack made the proxy hold expires last with the answers to it (Alice's refusals,
        // and the proxy's own for what expired), kept for the proxy's message TTL (60 s): the four
        // never collect them.
        detail: { outcomes, elapsedMs: Date.now() - t0, expiresAt: Math.max(expS * 1000, Date.now() + PROXY_TTL_MS) },
      };
    } finally {
      http.close();
    }
  },
};
