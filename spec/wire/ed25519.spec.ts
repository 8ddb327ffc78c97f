import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { expect } from 'chai';
import { ED25519_ENGINE, signNow, verifyNow } from '../../lib/wire/ed25519.js';

const ed25519Module = new URL('../../lib/wire/ed25519.js', import.meta.url).pathname;

describe('Ed25519 in place: libsodium when it loads, node:crypto otherwise', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');
  const data = Buffer.from('{"id":"x","aud":"alice"}');

  it('uses libsodium whenever sodium-native loads on this machine', () => {
    let loads = true;
    try {
      createRequire(import.meta.url)('sodium-native');
    } catch {
      loads = false;
    }
    expect(ED25519_ENGINE).to.equal(loads ? 'libsodium' : 'node:crypto');
  });

  it('both engines make the same signature, and each verifies the other’s', () => {
    const a = signNow(data, privateKey, 'libsodium');
    const b = signNow(data, privateKey, 'node:crypto');
    expect(a.equals(b)).to.equal(true);
    for (const engine of ['libsodium', 'node:crypto'] as const) {
      expect(verifyNow(data, a, publicKey, engine)).to.equal(true);
      const flipped = Buffer.from(a);
      flipped[10] ^= 1;
      expect(verifyNow(data, flipped, publicKey, engine)).to.equal(false);
      expect(verifyNow(Buffer.from('{"id":"y"}'), a, publicKey, engine)).to.equal(false);
      expect(verifyNow(data, a, other.publicKey, engine)).to.equal(false);
    }
  });

  it('WTD_NO_SODIUM=1 makes node:crypto do the work', () => {
    const out = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', `console.log((await import(${JSON.stringify(ed25519Module)})).ED25519_ENGINE)`],
      { env: { ...process.env, WTD_NO_SODIUM: '1' } },
    );
    expect(String(out).trim()).to.equal('node:crypto');
  });
});
