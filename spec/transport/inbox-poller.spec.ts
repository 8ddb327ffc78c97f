import { expect } from 'chai';
import { ManualClock, NodeDownError } from '../../lib/index.js';
import { newKeyPair } from '../../lib/security/keys.js';
import type { HttpResponse } from '../../lib/transport/http-client.js';
import { InboxPoller } from '../../lib/transport/inbox-poller.js';
import type { Link } from '../../lib/transport/link.js';
import { flush, MemoryLogger } from '../fixtures/helpers.js';

/** A link that answers each request with the next of `answers` (the last one repeated), counting requests. */
function scripted(answers: (() => Promise<HttpResponse>)[]): Link & { requests: number; asked: Promise<void>[] } {
  const asked: (() => void)[] = [];
  const link = {
    key: 'scripted',
    requests: 0,
    asked: [] as Promise<void>[],
    request: () => {
      const n = link.requests++;
      asked[n]?.();
      return answers[Math.min(n, answers.length - 1)]!();
    },
  };
  for (let i = 0; i < 10; i++) link.asked.push(new Promise<void>((resolve) => (asked[i] = resolve)));
  return link;
}

async function poller(link: Link, clock: ManualClock, logger: MemoryLogger): Promise<InboxPoller> {
  const keys = await newKeyPair();
  return new InboxPoller({
    link,
    nodeId: 'bob',
    peerId: 'alice',
    peerKey: keys.publicKey,
    peerKid: keys.thumbprint,
    signer: () => Promise.resolve('a.b.c'),
    clock,
    logger,
    receive: () => undefined,
  });
}

describe('InboxPoller: the long poll for messages to our pids', () => {
  it('stops for good when the node refuses it as unauthorised (the grant ended)', async () => {
    const clock = new ManualClock(0);
    const refused: HttpResponse = {
      status: 403,
      contentType: 'application/json',
      retryAfter: undefined,
      text: JSON.stringify({ error: { code: 'ERR_GRANT_REVOKED', message: 'revoked' } }),
    };
    const link = scripted([() => Promise.resolve(refused)]);
    const logger = new MemoryLogger();
    (await poller(link, clock, logger)).start();
    await link.asked[0];
    await flush();
    clock.advance(120_000);
    await flush();
    expect(link.requests).to.equal(1);
    expect(logger.lines).to.have.length(1);
  });

  it('while the node cannot be reached, tries again less and less often and logs once', async () => {
    const clock = new ManualClock(0);
    const link = scripted([() => Promise.reject(new NodeDownError('http://127.0.0.1:9'))]);
    const logger = new MemoryLogger();
    const p = await poller(link, clock, logger);
    p.start();
    await link.asked[0];
    await flush();
    clock.advance(1000); // first retry after 1 s
    await link.asked[1];
    await flush();
    clock.advance(1000); // the next waits 2 s
    await flush();
    expect(link.requests).to.equal(2);
    clock.advance(1000);
    await link.asked[2];
    await flush();
    expect(link.requests).to.equal(3);
    expect(logger.lines).to.have.length(1);
    p.stop();
    clock.advance(60_000);
    await flush();
    expect(link.requests).to.equal(3);
  });
});
