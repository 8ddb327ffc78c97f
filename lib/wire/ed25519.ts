import { createRequire } from 'node:module';
import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';

/** The part of sodium-native (libsodium) used here. */
interface Sodium {
  crypto_sign_detached(signature: Buffer, message: Buffer, secretKey: Buffer): void;
  crypto_sign_verify_detached(signature: Buffer, message: Buffer, publicKey: Buffer): boolean;
}

/**
 * libsodium, when its prebuilt addon loads on this machine (the optional
 * dependency sodium-native: linux x64 and arm64, macOS, Windows): its
 * Ed25519 signs and verifies about twice as fast as node:crypto's here.
 * Elsewhere (32-bit Raspberry Pi OS, say), or with `WTD_NO_SODIUM=1`,
 * node:crypto does the work. Ed25519 signatures are deterministic: both
 * give the same bytes.
 */
const sodium: Sodium | undefined = (() => {
  if (process.env.WTD_NO_SODIUM === '1') return undefined;
  try {
    return createRequire(import.meta.url)('sodium-native') as Sodium;
  } catch {
    return undefined;
  }
})();

/** Which implementation signs and verifies in place. */
export const ED25519_ENGINE: 'libsodium' | 'node:crypto' = sodium === undefined ? 'node:crypto' : 'libsodium';

// libsodium takes raw keys: the 32-byte public key, or seed and public key (64 bytes).
const rawKeys = new WeakMap<KeyObject, Buffer>();

function rawKey(key: KeyObject): Buffer {
  let raw = rawKeys.get(key);
  if (raw === undefined) {
    const jwk = key.export({ format: 'jwk' });
    const publicKey = Buffer.from(jwk.x!, 'base64url');
    raw = key.type === 'private' ? Buffer.concat([Buffer.from(jwk.d!, 'base64url'), publicKey]) : publicKey;
    rawKeys.set(key, raw);
  }
  return raw;
}

/** Signs `data` with the Ed25519 private `key`, in place (on the event loop). */
export function signNow(data: Buffer, key: KeyObject, engine: typeof ED25519_ENGINE = ED25519_ENGINE): Buffer {
  if (engine === 'libsodium' && sodium !== undefined) {
    const signature = Buffer.alloc(64);
    sodium.crypto_sign_detached(signature, data, rawKey(key));
    return signature;
  }
  return cryptoSign(null, data, key);
}

/** Checks a 64-byte Ed25519 `signature` of `data` against the public `key`, in place. */
export function verifyNow(
  data: Buffer,
  signature: Buffer,
  key: KeyObject,
  engine: typeof ED25519_ENGINE = ED25519_ENGINE,
): boolean {
  if (engine === 'libsodium' && sodium !== undefined) {
    return signature.length === 64 && sodium.crypto_sign_verify_detached(signature, data, rawKey(key));
  }
  return cryptoVerify(null, data, key, signature);
}
