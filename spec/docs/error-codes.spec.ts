import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ERROR_CODES, isErrorCode } from '../../lib/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('ERROR_CODES: one vocabulary of error codes', () => {
  it('README lists every code, and names no code that is not one', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(ERROR_CODES.filter((code) => !readme.includes(`\`${code}\``))).to.deep.equal([]);
    const named = new Set(readme.match(/`ERR_[A-Z_]+`/g)!.map((c) => c.slice(1, -1)));
    expect([...named].filter((c) => !isErrorCode(c))).to.deep.equal([]);
  });

  it('every code is used by the library, and the library uses no other', () => {
    const text = sources(join(ROOT, 'lib'))
      .filter((f) => !f.endsWith('error-codes.ts'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const used = new Set(text.match(/'ERR_[A-Z_]*[A-Z]'/g)!.map((c) => c.slice(1, -1)));
    expect(ERROR_CODES.filter((code) => !used.has(code))).to.deep.equal([]);
    expect([...used].filter((c) => !isErrorCode(c))).to.deep.equal([]);
  });

  it('isErrorCode tells a code of ours from anything else read off the wire', () => {
    expect([isErrorCode('ERR_NOPROC'), isErrorCode('EACCES'), isErrorCode(42), isErrorCode(undefined)]).to.deep.equal([
      true,
      false,
      false,
      false,
    ]);
  });
});
