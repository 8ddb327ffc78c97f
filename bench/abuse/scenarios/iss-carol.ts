/**
 * A call relayed through the proxy with Bob's grant that claims `iss` =
 * Carol, passing a pid of Carol's. Issue 10: Alice sent 901 messages into
 * Carol's queue. A relayed request's issuer must be the sender the proxy
 * authenticated: Carol, polling her own queue here, must receive nothing.
 */
import { Greeter } from '../../../samples/greeter.js';
import { bounded, sleep, tally, type Scenario } from '../scenario.js';
import {
  ATTACKER,
  HONEST,
  RawHttp,
  RawProxyClient,
  encodeArgs,
  grantKey,
  messageId,
  replyOf,
  signedCall,
  type RelayedIn,
} from '../wire.js';

export const issCarol: Scenario = {
  name: 'iss-carol',
  title: "a relayed call with Bob's grant claiming iss = Carol",
  counts: "messages that reached Carol's queue (none may)",
  caps: { short: { timeMs: 4000, count: 100 }, full: { timeMs: 30_000, count: 600 } },
  async prepare(env) {
    const http = new RawHttp(HONEST);
    const { client: carol, res } = await RawProxyClient.register(http, env.proxy, 'carol@example.org', 'carol');
    if (res.status !== 200) throw new Error(`Carol could not register: ${res.status} ${res.text}`);
    await carol.ping({ name: 'carol' });
    let received = 0;
    const kinds: Record<string, number> = {};
    let stopped = false;
    // Carol polls her queue, acknowledges what comes and answers each request as her node would (she
    // knows no key of Alice's: 401), so that Alice's next message to her is not held up waiting.
    const polling = (async () => {
      let ack: string[] = [];
      let answers: unknown[] = [];
      while (!stopped) {
        const { messages } = await carol.poll({ ack, messages: answers }, { timeoutMs: 1500 });
        received += messages.length;
        for (const m of messages) tally(kinds, `${m.kind} ${m.path ?? ''}`.trim());
        ack = messages.map((m) => m.id);
        answers = messages
          .filter((m) => m.kind === 'request')
          .map((m) => ({
            id: messageId(),
            kind: 'response',
            to: m.from,
            re: m.id,
            status: 401,
            contentType: 'application/json',
            text: JSON.stringify({ error: { code: 'ERR_UNKNOWN_KEY', message: 'no peer is known for this key' } }),
          }));
      }
    })();
    return {
      params: { carol: carol.id },
      async finish() {
        await sleep(1000); // what Alice was still sending
        stopped = true;
        await polling;
        return { accepted: received, allowed: 0, detail: { carolReceived: received, carolKinds: kinds } };
      },
      async close() {
        stopped = true;
        await polling.catch(() => undefined);
        http.close();
      },
    };
  },
  async attack(env) {
    const http = new RawHttp(ATTACKER);
    const carol = String(env.params.carol);
    const key = grantKey(env.grant);
    const path = '/apply/Greeter/countdown';
    const outcomes: Record<string, number> = {};
    try {
      const { client: bob, res } = await RawProxyClient.register(http, env.proxy, 'mallory@example.org', 'bob');
      if (res.status !== 200) throw new Error(`the attacker could not register: ${res.status} ${res.text}`);
      await bob.ping({ name: 'bob' });
      const answered = (messages: RelayedIn[]): string[] => {
        for (const m of messages) {
          if (m.kind !== 'response') continue;
          tally(outcomes, m.status === 200 ? (replyOf(m.text ?? '').error ?? 'ran') : `HTTP ${m.status}`);
        }
        return messages.map((m) => m.id);
      };
      let ack: string[] = [];
      env.started();
      const { runs, elapsedMs } = await bounded(
        env.caps,
        2,
        async () => {
          const args = encodeArgs([{ node: carol, id: 1, token: 'carol-token' }, Greeter.MAX_COUNTDOWN], [0]);
          const jws = signedCall(key, { aud: env.node.id, iss: carol }, path, args);
          const message = { id: messageId(), kind: 'request', to: env.node.id, path, jws };
          const { messages, results } = await bob.poll({ ack, messages: [message] }, { timeoutMs: 1500 });
          for (const r of results) if (r.error !== undefined) tally(outcomes, r.error.code);
          ack = answered(messages);
        },
        100,
      );
      return {
        attempted: runs,
        accepted: outcomes.ran ?? 0,
        allowed: 0,
        detail: { outcomes, elapsedMs },
      };
    } finally {
      http.close();
    }
  },
};
