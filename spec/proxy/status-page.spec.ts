import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { WtdNode, WtdProxy } from '../../lib/index.js';
import { launchBrowser } from '../fixtures/browser.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { closeAll, RawClient } from '../fixtures/proxy.js';
import { Probe } from '../fixtures/remote.js';

describe('WtdProxy status page (GET /) in headless Chromium', function () {
  this.timeout(30_000);
  let browser: Browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(() => browser?.close());

  it('shows who is online, their missions and queues, and updates live when a node goes offline', async () => {
    const logger = new MemoryLogger();
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, offlineAfterMs: 500, logger });
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger });
    try {
      alice.load(Probe);
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org', pingIntervalMs: 200 });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org', pingIntervalMs: 200 });
      const grant = await alice.grant({ missions: ['probe'], rate: '10/s' });
      expect(await (await bob.connect(grant)).call('Probe', 'touch', ['hello'])).to.equal('hello');

      const page = await browser.newPage();
      await page.goto(proxy.url);
      const row = (id: string) => page.locator(`tr[data-node="${id}"]`);
      await row(alice.id).waitFor();
      expect(await page.title()).to.equal('WTD proxy');
      expect(await page.locator('#summary').textContent()).to.match(
        /2 of 2 registered nodes online · 4 messages relayed/, // the first request of a session, then the call
      );
      const aliceCells = await row(alice.id).locator('td').allTextContents();
      expect(aliceCells[0]).to.equal(`alice ${alice.id}`);
      expect(aliceCells.slice(1, 4)).to.deep.equal(['online', 'other, probe', '0']);
      expect(aliceCells[4]).to.match(/just now|s ago/);
      expect(aliceCells.slice(5)).to.deep.equal(['2', '2']); // sent and received: the session's first request and the call

      // Bob stops pinging; the open page shows it offline without a reload.
      await bob.leaveProxy();
      await row(bob.id).locator('.status', { hasText: 'offline' }).waitFor({ timeout: 10_000 });
      expect(await page.locator('#summary').textContent()).to.match(/1 of 2 registered nodes online/);
      await page.close();
    } finally {
      await closeAll(bob, alice, proxy);
    }
  });

  it('marks a node that runs with encryption off, and no other', async () => {
    const logger = new MemoryLogger();
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger });
    const plain = await WtdNode.start({ name: 'plain', dataDir: ':memory:', logger, encryption: false });
    const sealed = await WtdNode.start({ name: 'sealed', dataDir: ':memory:', logger });
    try {
      await plain.joinProxy({ url: proxy.url, email: 'plain@example.org' });
      await sealed.joinProxy({ url: proxy.url, email: 'sealed@example.org' });
      const page = await browser.newPage();
      await page.goto(proxy.url);
      await page.locator(`tr[data-node="${sealed.id}"]`).waitFor();
      await page.locator(`tr[data-node="${plain.id}"] .plaintext`).waitFor();
      expect(await page.locator(`tr[data-node="${plain.id}"] .plaintext`).textContent()).to.include('encryption off');
      expect(await page.locator(`tr[data-node="${sealed.id}"] .plaintext`).count()).to.equal(0);
      await page.close();
    } finally {
      await closeAll(plain, sealed, proxy);
    }
  });

  it('pages through the nodes, a page of ?limit= at a time, without a reload', async () => {
    const logger = new MemoryLogger();
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger });
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger });
    try {
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org' });
      await RawClient.register(proxy, 'silent@example.org'); // registered, never online: last
      const page = await browser.newPage();
      await page.goto(`${proxy.url}/?limit=1`);
      await page.locator(`tr[data-node="${alice.id}"]`).waitFor();
      expect(await page.locator('tbody tr').count()).to.equal(1);
      expect(await page.locator('#pages').textContent()).to.equal('page 1 of 3');
      expect(await page.locator('#summary').textContent()).to.match(/^2 of 3 registered nodes online/);
      await page.locator('#next').click();
      await page.locator(`tr[data-node="${bob.id}"]`).waitFor();
      await page.locator('#next').click();
      await page.locator('tbody tr .status', { hasText: 'offline' }).waitFor();
      expect(await page.locator('#next').isDisabled()).to.equal(true);
      await page.locator('#prev').click();
      await page.locator(`tr[data-node="${bob.id}"]`).waitFor();
      await page.close();
    } finally {
      await closeAll(bob, alice, proxy);
    }
  });

  it('GET /status.json lists one page of nodes, online first: ?page= and ?limit= (100 by default, at most 1000), ?online=1', async () => {
    const logger = new MemoryLogger();
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger, maxNodesPerSource: 200 });
    try {
      const raws: RawClient[] = [];
      // In batches of 16: the connections one source may hold open at once (more are reset).
      for (let i = 0; i < 102; i += 16) {
        const batch = Array.from({ length: Math.min(16, 102 - i) }, (_, j) =>
          RawClient.register(proxy, `n${i + j}@example.org`),
        );
        raws.push(...(await Promise.all(batch)));
      }
      const online = raws.slice(-2);
      for (const r of online) await r.accept();
      const get = async (query: string) => {
        const res = await fetch(`${proxy.url}/status.json${query}`);
        return (await res.json()) as {
          total: number;
          online: number;
          page: number;
          pages: number;
          limit: number;
          nodes: { id: string; online: boolean }[];
        };
      };
      const first = await get('');
      expect([first.total, first.online, first.page, first.pages, first.limit, first.nodes.length]).to.deep.equal([
        102, 2, 1, 2, 100, 100,
      ]);
      expect(first.nodes.slice(0, 2).map((n) => n.online)).to.deep.equal([true, true]);
      expect((await get('?page=2')).nodes).to.have.length(2);
      expect((await get('?page=99')).page).to.equal(2);
      const top = await get('?limit=2');
      expect(top.nodes.map((n) => n.id).sort()).to.deep.equal(online.map((r) => r.id).sort());
      const all = await get('?limit=5000');
      expect([all.limit, all.nodes.length]).to.deep.equal([1000, 102]);
      expect((await get('?online=1')).nodes.map((n) => n.online)).to.deep.equal([true, true]);
    } finally {
      await proxy.close();
    }
  });

  it('GET /status.json is the same data for scripts', async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger: new MemoryLogger() });
    try {
      const res = await fetch(`${proxy.url}/status.json`);
      expect(res.headers.get('content-type')).to.match(/^application\/json/);
      const status = (await res.json()) as { id: string; nodes: unknown[] };
      expect([status.id, status.nodes]).to.deep.equal([proxy.id, []]);
      const missing = await fetch(`${proxy.url}/nope`);
      expect([missing.status, ((await missing.json()) as { error: { code: string } }).error.code]).to.deep.equal([
        404,
        'ERR_NOT_FOUND',
      ]);
    } finally {
      await proxy.close();
    }
  });
});
