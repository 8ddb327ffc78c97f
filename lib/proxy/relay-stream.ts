import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { WireError } from '../errors.js';
import type { ClockTimer, WallClock } from '../runtime/clock.js';
import type { ProxyClaims } from '../wire/claims.js';
import { Lines } from '../wire/lines.js';
import { deriveStreamKeys, LineMac, RELAY_STREAM_PROTOCOL, type StreamKeys } from '../wire/relay-stream.js';
import { newEphemeral, readPublicKey } from '../wire/session.js';
import type { RelayResult } from '../wire/relay.js';
import type { Live, RelayHub, StreamSink } from './relay-hub.js';
import { busyWait } from '../runtime/busy-wait.js';

/**
 * The proxy's side of nodes' streams (`wire/relay-stream.ts`): the upgrade,
 * checked as a poll is before anything else, then one {@link ServedRelay}
 * per node. A stream takes the place of the node's held poll and counts
 * against the same bound (`maxPolls`); a node has one (a newer one ends the
 * older). The proxy reads a line at most the poll body limit, nothing while
 * what it wrote is not read, and ends a stream silent for twice the poll
 * hold time (the node writes an empty line when it has said nothing for a
 * third of it), a line that is not the next of its sender, or not a poll's
 * body.
 * @module
 */

const PATH = /^\/nodes\/([A-Za-z0-9_-]{1,128})\/stream$/;
/** How long the results of a line with no refusal wait for messages to go down with, in ms. */
const RESULTS_WAIT_MS = 2;
/** Most messages handed over in one turn without the store being asked; past it they wait there. */
const PUSHED_MAX = 256;

/** What the proxy's side of streams needs. */
export interface RelayStreamDeps {
  proxyId: string;
  clock: WallClock;
  hub: RelayHub;
  /** Longest line, in bytes (the poll body limit). */
  maxLineBytes: number;
  /** How long the node may stay silent, in ms (the poll hold time; twice it ends the stream). */
  idleMs: number;
  /** The proxy's pipeline for a request signed by a registered node, acting as itself. */
  authenticate(jws: string, path: string, nodeId: string): Promise<{ live: Live; claims: ProxyClaims }>;
  /** Marks the connection busy in the guard (as a held poll is) until the function returned is called. */
  hold(socket: Socket): () => void;
  /** A refusal's status and JSON, as the proxy answers a poll it refuses. */
  refusal(err: unknown): { status: number; text: string };
  log(message: string): void;
}

/** Takes the upgrades of the proxy's server and serves each stream. */
export class RelayStreams {
  readonly #deps: RelayStreamDeps;
  readonly #open = new Set<ServedRelay>();
  #closed = false;

  constructor(server: Server, deps: RelayStreamDeps) {
    this.#deps = deps;
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      this.#upgrade(req, socket, head).catch((err: unknown) => this.#refuse(socket, err));
    });
  }

  /** Streams open now. */
  get size(): number {
    return this.#open.size;
  }

  #refuse(socket: Socket, err: unknown): void {
    if (socket.destroyed) return;
    const { status, text } = this.#deps.refusal(err);
    socket.end(
      `HTTP/1.1 ${status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  }

  async #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    // Nothing is read before the stream is set up: a line sent early is not read at all.
    socket.pause();
    const path = req.url ?? '';
    const m = PATH.exec(path);
    if (m === null) throw new WireError('ERR_NOT_FOUND', 404, 'no such route; a stream is PUT /nodes/<id>/stream');
    if (req.method !== 'PUT' || String(req.headers.upgrade ?? '').toLowerCase() !== RELAY_STREAM_PROTOCOL) {
      throw new WireError(
        'ERR_PROXY_BAD_REQUEST',
        400,
        `a stream is PUT /nodes/<id>/stream with Upgrade: ${RELAY_STREAM_PROTOCOL}`,
      );
    }
    if (this.#closed) throw new WireError('ERR_PROXY_BUSY', 503, 'the proxy is closing');
    const jws = req.headers['wtd-auth'];
    if (typeof jws !== 'string') {
      throw new WireError('ERR_PROXY_BAD_REQUEST', 400, 'a stream is opened by a signed request in Wtd-Auth');
    }
    const { live, claims } = await this.#deps.authenticate(jws, path, m[1]!);
    const body = claims.body as { key?: unknown } | null;
    let theirs;
    try {
      theirs = readPublicKey(body?.key);
    } catch (err) {
      throw new WireError('ERR_PROXY_BAD_REQUEST', 400, 'a stream is opened with an X25519 key', { cause: err });
    }
    const hub = this.#deps.hub;
    if (this.#closed || socket.destroyed) return void socket.destroy();
    if (!hub.mayStream(live.record.id)) {
      throw new WireError('ERR_PROXY_BUSY', 503, 'the proxy holds as many polls and streams as it can; poll instead');
    }
    const mine = newEphemeral();
    const keys = deriveStreamKeys(mine.privateKey, theirs, {
      proxy: this.#deps.proxyId,
      node: live.record.id,
      nodeKey: String(body!.key),
      proxyKey: mine.publicKey,
      id: claims.id,
    });
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${RELAY_STREAM_PROTOCOL}\r\n` +
        `Wtd-Key: ${mine.publicKey}\r\nWtd-Idle: ${this.#deps.idleMs}\r\n\r\n`,
    );
    const served = new ServedRelay(socket, live, keys, this.#deps);
    this.#open.add(served);
    socket.once('close', () => this.#open.delete(served));
    hub.attach(live, served);
    served.start(head);
  }

  /** Ends every stream: the proxy is closing. */
  close(): void {
    this.#closed = true;
    for (const s of this.#open) s.end();
  }
}

/** One node's stream, on the proxy's side. */
class ServedRelay implements StreamSink {
  readonly #socket: Socket;
  readonly #live: Live;
  readonly #up: LineMac;
  readonly #down: LineMac;
  readonly #deps: RelayStreamDeps;
  readonly #lines: Lines;
  readonly #release: () => void;
  readonly openedAt: number;
  #lastRead: number;
  #idle: ClockTimer | undefined;
  /**
   * Until the store has nothing more to give it, the stream hands over all
   * that waits, also what an earlier poll or stream was handed (and was not
   * acknowledged): the ids it wrote so far (at most a queue's worth).
   */
  #sentAll: Set<string> | undefined = new Set();
  /** Something not handed over may wait in the store: new messages wait behind it (they are not pushed). */
  #stored = true;
  /** Messages handed over as they were stored, and the results of lines read, to write at the end of the turn. */
  #pushed: string[] = [];
  #results: RelayResult[][] = [];
  #scheduled = false;
  #wrote = false;
  #resultsTimer: NodeJS.Timeout | undefined;

  constructor(socket: Socket, live: Live, keys: StreamKeys, deps: RelayStreamDeps) {
    this.#socket = socket;
    this.#live = live;
    this.#up = new LineMac(keys.up);
    this.#down = new LineMac(keys.down);
    this.#deps = deps;
    this.#lines = new Lines(deps.maxLineBytes + 64, (text) => this.#line(text), 'utf8');
    this.#release = deps.hold(socket);
    this.#lastRead = deps.clock.now();
    this.openedAt = this.#lastRead;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (!this.#lines.push(chunk) && !socket.destroyed) {
        this.#close(`sent a line longer than ${deps.maxLineBytes} bytes`);
      }
    });
    socket.on('drain', () => {
      socket.resume();
      this.#schedule();
    });
    socket.on('end', () => socket.destroy());
    socket.once('close', () => {
      this.#idle?.cancel();
      clearTimeout(this.#resultsTimer);
      this.#release();
      deps.hub.detach(live, this);
    });
  }

  start(head: Buffer): void {
    this.#check();
    if (head.length > 0) this.#socket.emit('data', head);
    this.#socket.resume();
    this.#schedule();
  }

  /**
   * Ends a stream that has said nothing for twice the idle time; writes an
   * empty line if it wrote nothing since the last look (so the node can tell
   * a silent proxy from an idle one).
   */
  #check(): void {
    const now = this.#deps.clock.now();
    if (now - this.#lastRead > 2 * this.#deps.idleMs) {
      this.#close(`was silent for ${2 * this.#deps.idleMs} ms`);
      return;
    }
    if (!this.#wrote) this.#socket.write(this.#down.line('{}'));
    this.#wrote = false;
    this.#idle = this.#deps.clock.setTimer(() => this.#check(), this.#deps.idleMs);
  }

  #close(why: string): void {
    if (this.#socket.destroyed) return;
    this.#deps.log(`the stream of node ${this.#live.record.id} ${why}; closed`);
    this.#socket.destroy();
  }

  #line(text: string): boolean {
    if (this.#socket.destroyed) return false;
    const json = this.#up.read(text);
    if (json === undefined) {
      this.#close('sent a line that is not its next one (a bad MAC)');
      return false;
    }
    this.#lastRead = this.#deps.clock.now();
    let results;
    try {
      results = this.#deps.hub.line(this.#live, JSON.parse(json));
    } catch (err) {
      // Not what a WTD node sends (it polls with a body of that shape): the stream ends, and the node's
      // resend over HTTP is answered with the refusal's code.
      this.#close(`sent a line that is not a poll's body (${(err as Error).message})`);
      return false;
    }
    // A line that carried no message (acknowledgements only, or to keep the stream) is not answered. Results
    // with a refusal go at the end of the turn; the others go with the next messages for the node, or in
    // RESULTS_WAIT_MS (a call's answer usually comes first, and takes them along).
    if (results.length > 0) {
      // It relayed something (to a node that accepts it): its answer usually follows within the busy wait.
      // Lines that relay nothing (keeping the stream, refused messages) cost only what their checks cost.
      if (results.some((r) => r.error === undefined)) busyWait.poke();
      this.#results.push(results);
      if (results.some((r) => r.error !== undefined)) this.#schedule();
      // Event-loop pacing on a real timer (as a poll client's re-poll), not time a spec drives.
      else this.#resultsTimer ??= setTimeout(() => this.#schedule(), RESULTS_WAIT_MS);
    }
    return true;
  }

  /** Something not handed over was stored for the node: it goes down at the end of the turn. */
  wake(): void {
    this.#stored = true;
    this.#schedule();
  }

  ready(): boolean {
    const socket = this.#socket;
    return !this.#stored && !socket.destroyed && !socket.writableNeedDrain && this.#pushed.length < PUSHED_MAX;
  }

  push(_id: string, text: string): void {
    this.#pushed.push(text);
    this.#schedule();
  }

  // At the end of the turn, after the lines read in it: what they relayed to others is written first
  // (their streams were scheduled first), then this node's results and messages, in one line.
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.flush();
    });
  }

  flush(): void {
    const socket = this.#socket;
    if (socket.destroyed) return;
    let messages = this.#pushed;
    this.#pushed = [];
    let more = false;
    // While the node does not read, what waits stays stored (in the relay's bounds); `drain` comes back here.
    if (this.#stored && !socket.writableNeedDrain) {
      const stored = this.#deps.hub.deliver(this.#live, this.#sentAll);
      more = stored.more;
      if (!more) {
        this.#stored = false;
        this.#sentAll = undefined;
      }
      // What was pushed came before: a message is pushed only while nothing older waits in the store.
      if (stored.messages.length > 0) messages = messages.concat(stored.messages);
    }
    const results = this.#results;
    this.#results = [];
    clearTimeout(this.#resultsTimer);
    this.#resultsTimer = undefined;
    if (messages.length > 0 || results.length > 0) {
      const parts = [];
      if (results.length > 0) parts.push(`"results":${JSON.stringify(results)}`);
      if (messages.length > 0) parts.push(`"messages":[${messages.join(',')}]`);
      socket.write(this.#down.line(`{${parts.join(',')}}`));
      if (messages.length > 0) busyWait.poke();
      this.#wrote = true;
    }
    if (socket.writableNeedDrain) socket.pause();
    if (more) setImmediate(() => this.#schedule());
  }

  end(): void {
    this.#socket.destroy();
  }
}
