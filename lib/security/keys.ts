import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { WtdError } from '../errors.js';

/**
 * An Ed25519 key pair, with its public half as a JWK and its RFC 7638
 * thumbprint. Keys are node:crypto `KeyObject`s: signing with them directly
 * is about 40% cheaper than through WebCrypto, and a remote call signs and
 * verifies twice.
 */
export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JWK;
  /** The RFC 7638 thumbprint of the public key (base64url SHA-256). */
  thumbprint: string;
}

/** A node id: the first 16 characters of its key's thumbprint (96 bits), stable for the key's life. */
export function shortId(thumbprint: string): string {
  return thumbprint.slice(0, 16);
}

function publicJwkOf(key: KeyObject): JWK {
  const { kty, crv, x } = key.export({ format: 'jwk' }) as JWK;
  return { kty, crv, x };
}

/**
 * The RFC 7638 thumbprint of an Ed25519 public JWK: the base64url SHA-256 of
 * its required members (`crv`, `kty`, `x`) in that order, no whitespace
 * (RFC 8037, section 2). Done here rather than with jose, which would load
 * its whole library into every node for these few lines.
 */
export function thumbprintOf(jwk: JWK): string {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
  return createHash('sha256').update(canonical).digest('base64url');
}

function fromKeys(privateKey: KeyObject, publicKey: KeyObject): KeyPair {
  const publicJwk = publicJwkOf(publicKey);
  return { privateKey, publicKey, publicJwk, thumbprint: thumbprintOf(publicJwk) };
}

/** Makes a new Ed25519 key pair. */
export async function newKeyPair(): Promise<KeyPair> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return fromKeys(privateKey, publicKey);
}

/** The private key as a JWK, to store or hand over in a grant file. */
export async function exportPrivate(pair: KeyPair): Promise<JWK> {
  return pair.privateKey.export({ format: 'jwk' }) as JWK;
}

/** Reads a key pair back from its private JWK. */
export async function importPrivate(jwk: JWK): Promise<KeyPair> {
  checkOkp(jwk, true);
  try {
    const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x!, d: jwk.d! }, format: 'jwk' });
    return fromKeys(privateKey, createPublicKey(privateKey));
  } catch (err) {
    throw new WtdError('ERR_BAD_KEY', 'the private key could not be read', { cause: err });
  }
}

/** Reads a public key from its JWK, checking that it is an Ed25519 public key. */
export async function importPublic(jwk: JWK): Promise<{ key: KeyObject; thumbprint: string }> {
  checkOkp(jwk, false);
  try {
    const pub: JWK = { kty: 'OKP', crv: 'Ed25519', x: jwk.x! };
    const key = createPublicKey({ key: pub as never, format: 'jwk' });
    return { key, thumbprint: thumbprintOf(pub) };
  } catch (err) {
    throw new WtdError('ERR_BAD_KEY', 'the public key could not be read', { cause: err });
  }
}

function checkOkp(jwk: JWK, needPrivate: boolean): void {
  if (
    jwk === null ||
    typeof jwk !== 'object' ||
    jwk.kty !== 'OKP' ||
    jwk.crv !== 'Ed25519' ||
    typeof jwk.x !== 'string'
  ) {
    throw new WtdError('ERR_BAD_KEY', 'expected an Ed25519 key as a JWK ({ kty: "OKP", crv: "Ed25519", x, ... })');
  }
  if (needPrivate && typeof jwk.d !== 'string') throw new WtdError('ERR_BAD_KEY', 'expected a private key (with d)');
  if (!needPrivate && 'd' in jwk) {
    throw new WtdError('ERR_BAD_KEY', 'this is a private key; send only the public half (without d)');
  }
}
