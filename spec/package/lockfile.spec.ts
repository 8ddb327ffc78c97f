import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { run } from '../fixtures/npm.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('package-lock.json', function () {
  this.timeout(120_000);
  it('is what npm install would write: installing the repository does not rewrite it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wtd-lock-'));
    try {
      for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(ROOT, f), join(dir, f));
      // What `npm install` decides, without installing anything.
      await run('npm', ['install', '--package-lock-only', '--ignore-scripts', '--prefer-offline'], dir);
      expect(JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8'))).to.deep.equal(
        JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists the root dependencies package.json declares, each in its own kind', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, Record<string, unknown>>;
    };
    for (const kind of ['dependencies', 'devDependencies', 'optionalDependencies']) {
      expect(lock.packages['']![kind], kind).to.deep.equal(pkg[kind]);
    }
  });
});
