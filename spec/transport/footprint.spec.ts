import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { WtdProxy } from '../../lib/index.js';
import { MemoryLogger } from '../fixtures/helpers.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

/** The packages (under node_modules) a node in its own process loads as ES modules, from start to close. */
async function packagesLoadedBy(proxyUrl: string): Promise<Set<string>> {
  const dir = mkdtempSync(join(tmpdir(), 'wtd-footprint-'));
  const log = join(dir, 'loaded.txt');
  try {
    const child = spawn(
      process.execPath,
      ['--import', fixture('load-log.js'), fixture('joined-process.js'), proxyUrl],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
        env: { ...process.env, WTD_LOAD_LOG: log },
      },
    );
    const exited = once(child, 'exit');
    // Joined (its one line), or gone without: whichever comes first.
    await Promise.race([once(createInterface({ input: child.stdout! }), 'line'), exited]);
    child.stdin!.end();
    const [code] = (await exited) as [number | null];
    expect(code).to.equal(0);
    const packages = new Set<string>();
    for (const url of readFileSync(log, 'utf8').split('\n')) {
      const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
      if (m) packages.add(m[1]!);
    }
    return packages;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('WtdNode.start(options).joinProxy(options): what a node loads', function () {
  this.timeout(20_000);
  let loaded: string[];
  before(async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger: new MemoryLogger() });
    try {
      loaded = [...(await packagesLoadedBy(proxy.url))];
    } finally {
      await proxy.close();
    }
  });

  // What a node loads it holds in memory as long as it runs (a Raspberry Pi's budget, bench row idle_node_rss).
  it('leaves out Koa and @koa/router (a node loads Koa when it listens; the proxy and the observer load them) and jose (thumbprints come from node:crypto)', async () => {
    // The log sees the packages a node does use, so an empty log cannot pass.
    expect(loaded).to.include.members(['superjson', 'p-queue']);
    expect(loaded).to.not.include.members(['jose']);
    expect(loaded).to.not.include.members(['@koa/router']);
    expect(loaded).to.not.include.members(['koa']);
  });

  it('runs reflect-metadata with require, not import (an import first scans its CommonJS source for exports)', async () => {
    expect(loaded).to.include.members(['superjson']);
    expect(loaded).to.not.include.members(['reflect-metadata']);
  });
});
