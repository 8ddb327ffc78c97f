/**
 * A large volume queued for nodes that never collect it, all expiring at
 * the same moment (the sender chooses `exp`). Issue 10: 664 MB queued, then
 * expired at once: proxy.db grew to 685 MB and never shrank, and the sweep
 * loaded 1 GB of bodies at once (RSS 2.4 GB, a 7 s stall). Honest calls are
 * measured through the expiry; the disk must come back within 10 %.
 */
import { bounded, sleep, tally, type Scenario } from '../scenario.js';
import { ATTACKER, RawHttp, RawProxyClient, TYP, fakeJws, messageId } from '../wire.js';

/** About the size of each message's JWS (under the proxy's 64 KiB per message). */
const MESSAGE_CHARS = 60_000;
/** Messages per poll: 600 KB of JSON, 800 KB once signed (under the proxy's 1 MiB per request). */
const PER_POLL = 10;
// The padding travels base64url-encoded inside the JWS's claims: 4/3 of its length.
const PADDING = 'p'.repeat(Math.floor(((MESSAGE_CHARS - 300) * 3) / 4));
/** Today's queue bound per destination: enough sinks that it is not what stops the attack. */
const PER_SINK = 1000;

export const massExpiry: Scenario = {
  name: 'mass-expiry',
  title: 'a large queued volume expiring at once',
  counts: 'MB the proxy queued for nodes that never collect (no grant: no rate)',
  // count: messages of 60 KB (short ≈ 60 MB, full ≈ 700 MB).
  caps: { short: { timeMs: 5000, count: 1000 }, full: { timeMs: 45_000, count: 11_700 } },
  disk: true,
  async attack(env) {
    const http = new RawHttp(ATTACKER, 64);
    try {
      const register = async (who: string): Promise<RawProxyClient> => {
        const { client, res } = await RawProxyClient.register(http, env.proxy, `${who}@example.org`, who);
        if (res.status !== 200) throw new Error(`${who} could not register: ${res.status} ${res.text}`);
        return client;
      };
      const sinks: RawProxyClient[] = [];
      for (let i = 0; i < Math.ceil(env.caps.count / PER_SINK); i++) sinks.push(await register(`sink${i}`));
      const senders = [await register('sender0'), await register('sender1')];
      // Everything expires at once, just after the sending stops.
      const expS = Math.floor(Date.now() / 1000) + Math.min(55, Math.ceil(env.caps.timeMs / 1000) + 2);
      const outcomes: Record<string, number> = {};
      let queuedBytes = 0;
      let next = 0;
      env.started();
      const t0 = Date.now();
      const { runs } = await bounded(
        { timeMs: env.caps.timeMs, count: Math.ceil(env.caps.count / PER_POLL) },
        4,
        async (w) => {
          const sender = senders[w % senders.length]!;
          const messages = Array.from({ length: PER_POLL }, () => {
            const to = sinks[next++ % sinks.length]!.id;
            return {
              id: messageId(),
              kind: 'request',
              to,
              path: '/apply/Greeter/hello',
              jws: fakeJws({ typ: TYP.call, kid: 'k' }, { aud: to, iss: sender.id, exp: expS, pad: PADDING }),
            };
          });
          const r = await sender.poll({ messages }, { timeoutMs: 2000 });
          r.results.forEach((x, i) => {
            if (x.error === undefined) queuedBytes += messages[i]!.jws.length;
            tally(outcomes, x.error?.code ?? 'queued');
          });
          if (r.res.status !== 200) tally(outcomes, r.res.code ?? r.res.failure ?? `HTTP ${r.res.status}`);
        },
      );
      const sendMs = Date.now() - t0;
      // The attack lasts through the expiry and the sweep after it: that is when the stall came.
      await sleep(Math.max(0, expS * 1000 + 3000 - Date.now()));
      // The senders collect what the proxy told them (that nobody collected theirs), as their nodes would.
      for (const sender of senders) {
        let ack: string[] = [];
        for (let i = 0; i < 20; i++) {
          const r = await sender.poll({ ack }, { timeoutMs: 1000 });
          ack = r.messages.map((m) => m.id);
          if (ack.length === 0) break;
        }
      }
      return {
        attempted: runs * PER_POLL,
        accepted: Math.round(queuedBytes / 1e6),
        allowed: null,
        detail: { outcomes, sendMs, sinks: sinks.length, expiresAt: expS * 1000 },
      };
    } finally {
      http.close();
    }
  },
};
