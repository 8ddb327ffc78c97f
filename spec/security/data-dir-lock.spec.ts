import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { DataDirLockedError, WtdNode } from '../../lib/index.js';
import { rejection } from '../fixtures/helpers.js';

const INDEX = fileURLToPath(new URL('../../lib/index.js', import.meta.url));

describe('WtdNode.start({ dataDir }): one running node per data directory', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wtd-lock-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a second node on the same directory is refused with ERR_DATA_DIR_LOCKED, naming the holder', async () => {
    const first = await WtdNode.start({ name: 'alice', dataDir: dir });
    try {
      const err = await rejection(WtdNode.start({ name: 'alice', dataDir: dir }));
      expect(err).to.be.instanceOf(DataDirLockedError);
      expect([err.code, err.pid]).to.deep.equal(['ERR_DATA_DIR_LOCKED', process.pid]);
    } finally {
      await first.close();
    }
    // Closed: the directory is free again, with the same identity.
    const again = await WtdNode.start({ name: 'alice', dataDir: dir });
    await again.close();
  });

  it('a shared node grants and revokes beside a running one, but cannot listen or join a proxy', async () => {
    const running = await WtdNode.start({ name: 'alice', dataDir: dir });
    const tool = await WtdNode.start({ name: 'alice', dataDir: dir, shared: true });
    try {
      expect(tool.id).to.equal(running.id);
      const grant = await tool.grant({ missions: ['greetings'], rate: '1/s' });
      expect(running.grants().map((g) => g.kid)).to.deep.equal([grant.kid]);
      expect(tool.revoke(grant.kid)).to.equal(true);
      expect(running.grants()[0]!.revokedAt).to.be.a('number');
      expect((await rejection(tool.listen({ port: 0 }))).code).to.equal('ERR_DATA_DIR_LOCKED');
      expect((await rejection(tool.joinProxy({ url: 'http://127.0.0.1:1', email: 'a@example.org' }))).code).to.equal(
        'ERR_DATA_DIR_LOCKED',
      );
    } finally {
      await tool.close();
      await running.close();
    }
  });

  it('a node in another process holds the directory until that process dies, even by SIGKILL', async () => {
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { WtdNode } = await import(${JSON.stringify(INDEX)});
         await WtdNode.start({ name: 'alice', dataDir: ${JSON.stringify(dir)} });
         console.log('ready');
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        child.once('exit', (code) => reject(new Error(`the child exited ${code}`)));
      });
      const err = await rejection(WtdNode.start({ name: 'alice', dataDir: dir }));
      expect([err.constructor, err.code, err.pid]).to.deep.equal([
        DataDirLockedError,
        'ERR_DATA_DIR_LOCKED',
        child.pid,
      ]);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    // The operating system released the lock with the process.
    const after = await WtdNode.start({ name: 'alice', dataDir: dir });
    await after.close();
  });
});
