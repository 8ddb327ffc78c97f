import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { EXIT, printable } from '../../lib/cli/wtd.js';
import { ManualClock, WtdProxy } from '../../lib/index.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { RawClient } from '../fixtures/proxy.js';
import { wtd } from '../fixtures/cli.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const HOSTILE = 'evil\u001b]0;owned\u0007\u001b[31mred\u009b2J';

describe('printable(text): what other nodes say never drives the terminal', () => {
  it('shows control characters as escapes, keeping newlines and tabs', () => {
    const shown = printable(`${HOSTILE}\n\tok`);
    expect(CONTROL.test(shown)).to.equal(false);
    expect(shown).to.equal('evil\\u{1b}]0;owned\\u{7}\\u{1b}[31mred\\u{9b}2J\n\tok');
  });

  it('wtd directory prints a hostile proxy’s names, missions and addresses without their control characters', async () => {
    const status = {
      nodes: [
        { id: 'x', name: HOSTILE, online: true, missions: [HOSTILE], address: `http://a/${HOSTILE}`, lastSeen: 0 },
      ],
    };
    const fake = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(status));
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
      const run = await wtd(['directory', '--proxy', url]);
      expect(run.code).to.equal(EXIT.ok);
      expect(run.out).to.include('evil');
      expect(CONTROL.test(run.out + run.err)).to.equal(false);
    } finally {
      fake.close();
    }
  });
});

describe('WtdProxy ping: what a node publishes is checked where it enters', () => {
  it('a mission that breaks the mission-name rule, a grant id that is not a key id, or an address with control characters is refused', async () => {
    const clock = new ManualClock(Date.now());
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger: new MemoryLogger(), wallClock: clock });
    try {
      const raw = await RawClient.register(proxy, 'raw@example.org', clock);
      const ping = (body: unknown) => raw.put(`/nodes/${raw.id}/ping`, body);
      for (const body of [
        { missions: [HOSTILE] },
        { missions: ['Upper'] },
        { grants: ['not a kid!'] },
        { address: `http://a/${HOSTILE}` },
      ]) {
        const res = await ping(body);
        // An address that is not a clean http(s) URL is taken as none; the rest is refused.
        if ('address' in body) expect(res.status).to.equal(200);
        else expect([res.status, res.code], JSON.stringify(body)).to.deep.equal([400, 'ERR_PROXY_BAD_REQUEST']);
      }
      const entry = proxy.status().nodes.find((n) => n.id === raw.id)!;
      expect([entry.missions, entry.address]).to.deep.equal([[], null]);
      expect((await ping({ missions: ['greetings'], address: 'http://127.0.0.1:1' })).status).to.equal(200);
      expect(proxy.status().nodes.find((n) => n.id === raw.id)!.missions).to.deep.equal(['greetings']);
    } finally {
      await proxy.close();
    }
  });
});
