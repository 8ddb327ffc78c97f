import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ClockTimer, WallClock } from '../runtime/clock.js';
import { Lines } from '../wire/lines.js';
import { deriveStreamKeys, LineMac, RELAY_STREAM_PROTOCOL } from '../wire/relay-stream.js';
import { newEphemeral, readPublicKey, type Ephemeral } from '../wire/session.js';
import { MAX_RESPONSE_BYTES } from './http-client.js';
import { busyWait } from '../runtime/busy-wait.js';

/**
 * A node's side of its stream to the proxy (`wire/relay-stream.ts`): opens
 * it, writes lines, reads and checks the proxy's, and writes an empty line
 * when it has said nothing for a third of the time the proxy keeps a
 * silent stream. It knows nothing of what the lines mean: the proxy client
 * does.
 * @module
 */

/** Time for the upgrade to be answered, in ms. */
const OPEN_TIMEOUT_MS = 5000;

/** What opening a stream needs: where, the signed opening request (made with `key`), and the binding. */
export interface RelayStreamOpen {
  /** The proxy's URL and the stream's path. */
  url: string;
  path: string;
  /** The node's ephemeral key, whose public half the signed request carries. */
  key: Ephemeral;
  /** The signed opening request, and its id. */
  jws: string;
  id: string;
  proxy: string;
  node: string;
  clock: WallClock;
}

/** What the stream tells its owner. */
export interface RelayStreamEvents {
  /** A line of the proxy's, checked, as JSON text. */
  line(json: string): void;
  /** Nothing was written for a third of the time the proxy keeps a silent stream: write something (an empty poll). */
  idle(): void;
  /** The stream ended (whatever the reason); told once. */
  closed(why: string): void;
}

/** An open stream to the proxy. */
export class RelayStreamClient {
  readonly #socket: Socket;
  readonly #up: LineMac;
  readonly #down: LineMac;
  readonly #clock: WallClock;
  readonly #idleMs: number;
  readonly #events: RelayStreamEvents;
  #wrote = false;
  #lastRead: number;
  #keepAlive: ClockTimer | undefined;
  #closed = false;

  /**
   * Opens a stream; resolves with it, or with the proxy's refusal (status
   * and text; status 0 when it could not be reached or did not stream).
   */
  static open(
    o: RelayStreamOpen,
    events: RelayStreamEvents,
  ): Promise<RelayStreamClient | { status: number; text: string }> {
    return new Promise((resolve) => {
      let over = false;
      const done = (result: RelayStreamClient | { status: number; text: string }): void => {
        if (over) {
          if (result instanceof RelayStreamClient) result.close();
          return;
        }
        over = true;
        timer.cancel();
        resolve(result);
      };
      const req = httpRequest(`${o.url}${o.path}`, {
        method: 'PUT',
        agent: false,
        headers: { connection: 'Upgrade', upgrade: RELAY_STREAM_PROTOCOL, 'wtd-auth': o.jws, 'content-length': 0 },
      });
      const timer = o.clock.setTimer(() => {
        req.destroy();
        done({ status: 0, text: '' });
      }, OPEN_TIMEOUT_MS);
      req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
        const theirs = res.headers['wtd-key'];
        const idleMs = Number(res.headers['wtd-idle']);
        if (
          res.statusCode !== 101 ||
          String(res.headers.upgrade).toLowerCase() !== RELAY_STREAM_PROTOCOL ||
          typeof theirs !== 'string' ||
          !Number.isSafeInteger(idleMs) ||
          idleMs < 30
        ) {
          socket.destroy();
          return done({ status: 0, text: '' });
        }
        try {
          const keys = deriveStreamKeys(o.key.privateKey, readPublicKey(theirs), {
            proxy: o.proxy,
            node: o.node,
            nodeKey: o.key.publicKey,
            proxyKey: theirs,
            id: o.id,
          });
          const stream = new RelayStreamClient(socket, keys.up, keys.down, o.clock, idleMs, events);
          done(stream);
          if (head.length > 0) socket.emit('data', head);
        } catch {
          socket.destroy();
          done({ status: 0, text: '' });
        }
      });
      // Refused (or a proxy of before, which has no streams): its answer, read within a bound.
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (bytes <= 64 * 1024) chunks.push(c);
        });
        res.on('end', () => done({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', () => done({ status: 0, text: '' }));
      });
      req.on('error', () => done({ status: 0, text: '' }));
      req.end();
    });
  }

  /** Makes a fresh ephemeral key for an opening request. */
  static newKey(): Ephemeral {
    return newEphemeral();
  }

  private constructor(
    socket: Socket,
    up: Buffer,
    down: Buffer,
    clock: WallClock,
    idleMs: number,
    events: RelayStreamEvents,
  ) {
    this.#socket = socket;
    this.#up = new LineMac(up);
    this.#down = new LineMac(down);
    this.#clock = clock;
    this.#idleMs = idleMs;
    this.#events = events;
    socket.setNoDelay(true);
    const lines = new Lines(
      MAX_RESPONSE_BYTES,
      (text) => {
        const json = this.#down.read(text);
        if (json === undefined) {
          this.close('the proxy sent a line that is not its next one');
          return false;
        }
        busyWait.poke();
        this.#events.line(json);
        return !this.#closed;
      },
      'utf8',
    );
    this.#lastRead = clock.now();
    socket.on('data', (chunk: Buffer) => {
      this.#lastRead = this.#clock.now();
      if (!lines.push(chunk)) this.close('the proxy sent a line too long');
    });
    socket.on('error', () => this.close('the stream failed'));
    socket.on('end', () => this.close('the proxy ended the stream'));
    socket.on('close', () => this.close('the stream closed'));
    this.#arm();
  }

  #arm(): void {
    this.#keepAlive = this.#clock.setTimer(() => this.#tick(), Math.floor(this.#idleMs / 3));
  }

  /**
   * Asks for an empty poll when nothing was written since the last tick, so
   * the proxy keeps the stream; ends a stream the proxy has said nothing on
   * for three times its idle time (it writes at least once in each).
   */
  #tick(): void {
    if (this.#closed) return;
    if (this.#clock.now() - this.#lastRead > 3 * this.#idleMs) {
      this.close(`the proxy said nothing for ${3 * this.#idleMs} ms`);
      return;
    }
    if (!this.#wrote) this.#events.idle();
    this.#wrote = false;
    this.#arm();
  }

  /** Writes one line of JSON (a poll's body). */
  write(json: string): void {
    if (this.#closed) return;
    this.#wrote = true;
    this.#socket.write(this.#up.line(json));
    busyWait.poke();
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(why = 'closed by this node'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#keepAlive?.cancel();
    this.#socket.destroy();
    this.#events.closed(why);
  }
}
