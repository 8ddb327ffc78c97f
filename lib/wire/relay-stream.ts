import { createHmac, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { sharedSecret } from './session.js';

/**
 * A node's stream to its proxy: one connection, upgraded from HTTP, that
 * carries what polls carry (acknowledgements and messages to relay, up;
 * results and messages waiting for the node, down) as lines, instead of one
 * signed long poll after another. Both sides type against this module.
 *
 * - Opening: `PUT /nodes/<id>/stream` with `Upgrade: wtd-relay` and the
 *   header `Wtd-Auth`, a request to the proxy signed by the node key (as a
 *   poll is: the same audience, path, time and replay checks) whose body is
 *   {@link StreamOpenBody}, an ephemeral X25519 key. The proxy answers 101
 *   with its own in `Wtd-Key` and how long it keeps a silent stream in
 *   `Wtd-Idle` (ms), or refuses as it refuses a poll (status and JSON).
 * - Then each line is `<mac> <json>\n`: the MAC (HMAC-SHA256, 16 bytes,
 *   base64url) of the line's number in its direction and its JSON, under
 *   that direction's key (HKDF over the X25519 secret, bound to the proxy,
 *   the node, both keys and the request's id). A line whose MAC is not that
 *   of the next number is not read, and the stream ends: a line cannot be
 *   forged, changed, dropped, repeated or moved to another stream.
 * - Up (node to proxy): a `PollBody` (`wire/relay.ts`): acknowledgements
 *   and messages to relay. Down: `{"results": [[...], ...], "messages":
 *   [...]}`, either part absent when empty: the results of the up lines
 *   that carried messages, in their order, one list per line (a line with
 *   no message is not answered; results with no refusal may wait a moment
 *   for messages to go with); and what waits for the node, acknowledged in
 *   a later up line as after a poll.
 *
 * A message sent on a stream that ended before its results came is sent
 * again (over HTTP, or on the next stream) with the same id, as after a
 * poll whose answer was lost: the proxy drops repeats. A node keeps its
 * stream by writing at least every third of `Wtd-Idle` (an empty poll);
 * the proxy writes `{}` when it wrote nothing in one `Wtd-Idle`, and a node
 * that heard nothing for three ends the stream (a proxy gone silent).
 * @module
 */

/** The protocol of the upgrade, and the path of a node's stream. */
export const RELAY_STREAM_PROTOCOL = 'wtd-relay';
export function relayStreamPath(nodeId: string): string {
  return `/nodes/${nodeId}/stream`;
}

/** The signed body of the opening request. */
export interface StreamOpenBody {
  /** The node's ephemeral X25519 public key, 32 bytes base64url. */
  key: string;
}

/** What both keys of a stream are bound to. */
export interface StreamBinding {
  proxy: string;
  node: string;
  nodeKey: string;
  proxyKey: string;
  /** The id of the signed opening request (unique: the proxy admits it once). */
  id: string;
}

/** The two keys of a stream: node to proxy, proxy to node. */
export interface StreamKeys {
  up: Buffer;
  down: Buffer;
}

/** Both keys of a stream, from `mine` and `theirs` (either side derives the same two). */
export function deriveStreamKeys(mine: KeyObject, theirs: KeyObject, binding: StreamBinding): StreamKeys {
  const shared = sharedSecret(mine, theirs, 'ERR_PROXY_BAD_REQUEST', 'stream');
  const info = Buffer.from(
    ['wtd-relay-1', binding.proxy, binding.node, binding.nodeKey, binding.proxyKey, binding.id].join('\n'),
  );
  const okm = Buffer.from(hkdfSync('sha256', shared, Buffer.alloc(0), info, 64));
  return { up: okm.subarray(0, 32), down: okm.subarray(32, 64) };
}

/** Length of a line's MAC, in base64url characters (16 bytes). */
const MAC_CHARS = 22;

/**
 * One direction of a stream: makes the lines it sends, or reads the lines
 * it receives, counting them.
 */
export class LineMac {
  readonly #key: Buffer;
  #seq = 0n;
  readonly #n = Buffer.alloc(8);

  constructor(key: Buffer) {
    this.#key = key;
  }

  #mac(json: string): Buffer {
    this.#n.writeBigUInt64BE(this.#seq++);
    return createHmac('sha256', this.#key).update(this.#n).update(json, 'utf8').digest().subarray(0, 16);
  }

  /** The line for `json`, newline included. */
  line(json: string): string {
    return `${this.#mac(json).toString('base64url')} ${json}\n`;
  }

  /** The JSON of the next line, or undefined if it is not the next line of this stream's sender. */
  read(text: string): string | undefined {
    if (text.length < MAC_CHARS + 1 || text[MAC_CHARS] !== ' ') return undefined;
    const json = text.slice(MAC_CHARS + 1);
    const given = Buffer.from(text.slice(0, MAC_CHARS), 'base64url');
    const want = this.#mac(json);
    return given.length === want.length && timingSafeEqual(given, want) ? json : undefined;
  }
}
