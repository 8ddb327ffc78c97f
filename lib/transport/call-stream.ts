import { request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { CallTimeoutError, MaybeRanError, WireError } from '../errors.js';
import type { ClockTimer, WallClock } from '../runtime/clock.js';
import { isSessionMessage } from '../wire/session.js';
import { CALLS_IN_FLIGHT } from './calls.js';
import { MAX_RESPONSE_BYTES, send, type HttpResponse, type StreamReader } from './http-client.js';
import type { Link } from './link.js';
import { Lines } from '../wire/lines.js';
import { refusalResponse } from './refusals.js';
import { busyWait } from '../runtime/busy-wait.js';

/**
 * Calls on a stream: one connection per session, upgraded from HTTP
 * (`PUT /stream`, `Upgrade: wtd-calls`), that carries a caller's lone calls
 * as lines instead of one HTTP request each. A call costs a write each way
 * and no HTTP parsing, which is most of what a lone call over loopback
 * spent besides its own work.
 *
 * Nothing about a call changes but its carriage: each line holds the same
 * sealed session request that `PUT /apply/...` or `PUT /behaviour/...`
 * would carry as its body, and the node runs it through the same
 * dispatcher, with every check in the same order, before any user code;
 * the answer line holds what the HTTP answer would (status, `Retry-After`,
 * type and body). So the stream needs no authentication of its own: a line
 * not sealed in a session the node holds is refused as the same request
 * over HTTP would be.
 *
 * - Caller to node: `<tag> <path> <sealed request>\n`, `tag` a number the
 *   caller picks (1 to 15 digits).
 * - Node to caller: `<tag> <status> <retry-after|-> <type|-> <body>\n`, in
 *   the order the calls end; or `bye\n`, after which the node reads nothing
 *   more: a call it did not answer before `bye` did not run, and the caller
 *   sends it again over HTTP (the same bytes: a copy that did arrive is
 *   answered once, from the node's answers kept for resends).
 *
 * Bounds on the node's side: a line at most the body limit (plus its path),
 * {@link STREAM_IN_FLIGHT} calls running per stream (then the node reads no
 * more until one ends), nothing read while what it wrote is not being read,
 * and `bye` after the idle timeout with no call on its way. A stream is one
 * connection of the guard's: busy (never closed to make room) only while it
 * has a call running; an idle one asked to make room says `bye` first.
 * @module
 */

/** The path and protocol of the upgrade. */
export const STREAM_PATH = '/stream';
export const STREAM_PROTOCOL = 'wtd-calls';

/** Calls running at once on one stream: as many as may be on their way to a node from one connection. */
export const STREAM_IN_FLIGHT = CALLS_IN_FLIGHT;

/** Longest path a line may carry, in bytes. */
const MAX_PATH_BYTES = 2048;
const TAG = /^[0-9]{1,15}$/;
const BYE = 'bye';

/** What the node's side of streams needs. */
export interface StreamServerDeps {
  /** Runs one sealed request to `path`, as the HTTP server would (never throws). */
  dispatch(path: string, text: string, source: string): Promise<HttpResponse>;
  clock: WallClock;
  /** Longest sealed request, in bytes (the server's body limit). */
  maxBodyBytes: number;
  /** How long a stream with no call on its way is kept, in ms. */
  idleMs: number;
  /** Marks the connection busy (not to be closed to make room) until the function returned is called. */
  hold(socket: Socket): () => void;
  /** What to do instead of destroying the connection when the guard needs its room. */
  onEvict(socket: Socket, evict: () => void): void;
  /** One line for the node's log (throttled there). */
  log(message: string): void;
}

/** The node's side: takes the upgrades of one HTTP server and serves each stream. */
export class StreamServer {
  readonly #deps: StreamServerDeps;
  readonly #streams = new Set<ServedStream>();
  #closing = false;

  constructor(server: Server, deps: StreamServerDeps) {
    this.#deps = deps;
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#upgrade(req, socket, head));
  }

  /** Streams open now. */
  get size(): number {
    return this.#streams.size;
  }

  #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const protocol = String(req.headers.upgrade ?? '').toLowerCase();
    if (req.url !== STREAM_PATH || req.method !== 'PUT' || protocol !== STREAM_PROTOCOL || this.#closing) {
      const err = this.#closing
        ? new WireError('ERR_NODE_DOWN', 503, 'this node is closing')
        : req.url !== STREAM_PATH
          ? new WireError('ERR_NOT_FOUND', 404, `no such route; streams are PUT ${STREAM_PATH}`)
          : new WireError('ERR_BAD_REQUEST', 400, `a stream is PUT ${STREAM_PATH} with Upgrade: ${STREAM_PROTOCOL}`);
      const res = refusalResponse(err);
      socket.end(
        `HTTP/1.1 ${res.status} Refused\r\nContent-Type: ${res.contentType}\r\nContent-Length: ${Buffer.byteLength(res.text)}\r\nConnection: close\r\n\r\n${res.text}`,
      );
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${STREAM_PROTOCOL}\r\n\r\n`);
    const address = socket.remoteAddress ?? 'unknown';
    const stream = new ServedStream(socket, this.#deps, address.startsWith('::ffff:') ? address.slice(7) : address);
    this.#streams.add(stream);
    socket.once('close', () => this.#streams.delete(stream));
    if (head.length > 0) stream.take(head);
  }

  /** Says `bye` on every stream (at once when idle, else once its calls are answered); `destroy` cuts them. */
  close(destroy = false): void {
    this.#closing = true;
    for (const s of this.#streams) {
      if (destroy) s.destroy();
      else s.bye();
    }
  }
}

/** One stream, on the node's side. */
class ServedStream {
  readonly #socket: Socket;
  readonly #deps: StreamServerDeps;
  readonly #source: string;
  readonly #lines: Lines;
  #running = 0;
  readonly #backlog: { tag: string; path: string; message: string }[] = [];
  #release: (() => void) | undefined;
  #idle: ClockTimer | undefined;
  /** Set once `bye` was decided: nothing more is read, and `bye` goes once the calls running are answered. */
  #ending = false;

  constructor(socket: Socket, deps: StreamServerDeps, source: string) {
    this.#socket = socket;
    this.#deps = deps;
    this.#source = source;
    this.#lines = new Lines(deps.maxBodyBytes + MAX_PATH_BYTES + 20, (text) => this.#line(text));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.take(chunk));
    socket.on('drain', () => this.#flow());
    // The caller ended its side: what runs is still answered, then the stream ends.
    socket.on('end', () => this.bye());
    socket.once('close', () => {
      this.#idle?.cancel();
      this.#release?.();
      this.#release = undefined;
    });
    deps.onEvict(socket, () => this.bye());
    this.#arm();
  }

  take(chunk: Buffer): void {
    if (this.#ending) return;
    if (!this.#lines.push(chunk) && !this.#ending) {
      this.#deps.log(`a stream from ${this.#source} sent a line longer than ${this.#deps.maxBodyBytes} bytes; closed`);
      this.destroy();
    }
  }

  #line(text: string): boolean {
    const a = text.indexOf(' ');
    const b = a === -1 ? -1 : text.indexOf(' ', a + 1);
    const tag = text.slice(0, a);
    if (b === -1 || !TAG.test(tag) || b - a - 1 > MAX_PATH_BYTES) {
      // Not what a WTD caller sends: nothing of it is run, and the stream ends.
      this.#deps.log(`a stream from ${this.#source} sent a line that is not <tag> <path> <message>; closed`);
      this.destroy();
      return false;
    }
    const line = { tag, path: text.slice(a + 1, b), message: text.slice(b + 1) };
    // Past the bound, the lines already read wait here (no more than one read's worth: reading stops).
    if (this.#running >= STREAM_IN_FLIGHT) this.#backlog.push(line);
    else this.#start(line);
    this.#flow();
    return true;
  }

  #start(line: { tag: string; path: string; message: string }): void {
    this.#running++;
    this.#idle?.cancel();
    this.#idle = undefined;
    this.#release ??= this.#deps.hold(this.#socket);
    void this.#run(line.tag, line.path, line.message);
  }

  async #run(tag: string, path: string, message: string): Promise<void> {
    // Calls only, each in a session: the rest has its own routes (and batches are `PUT /calls`).
    const res =
      !path.startsWith('/apply/') && !path.startsWith('/behaviour/')
        ? refusalResponse(new WireError('ERR_BAD_REQUEST', 400, 'a stream carries calls only (/apply, /behaviour)'))
        : !isSessionMessage(message)
          ? refusalResponse(
              new WireError('ERR_SESSION_REQUIRED', 426, 'a stream carries requests sealed in a session only'),
            )
          : await this.#deps.dispatch(path, message, this.#source);
    this.#running--;
    const next = this.#socket.destroyed || this.#ending ? undefined : this.#backlog.shift();
    if (next !== undefined) this.#start(next);
    if (!this.#socket.destroyed) {
      const text = res.stream === undefined ? res.text : '';
      this.#socket.write(`${tag} ${res.status} ${res.retryAfter ?? '-'} ${res.contentType || '-'} ${text}\n`);
      // A call that passed every check was answered (its caller's next one often follows at once); what a
      // stranger's refused lines cost stays what their checks cost.
      if (res.status === 200) busyWait.poke();
    }
    if (this.#running === 0) {
      this.#release?.();
      this.#release = undefined;
      if (this.#ending) this.#end();
      else this.#arm();
    }
    this.#flow();
  }

  /** Reads on while fewer than the bound run and what was written is being read. */
  #flow(): void {
    const socket = this.#socket;
    if (this.#ending || socket.destroyed) return;
    if (this.#running >= STREAM_IN_FLIGHT || this.#backlog.length > 0 || socket.writableNeedDrain) socket.pause();
    else socket.resume();
  }

  #arm(): void {
    this.#idle?.cancel();
    this.#idle = this.#deps.clock.setTimer(() => this.bye(), this.#deps.idleMs);
  }

  /** Reads nothing more; says `bye` once nothing runs. */
  bye(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.#idle?.cancel();
    this.#socket.pause();
    if (this.#running === 0) this.#end();
  }

  #end(): void {
    if (this.#socket.destroyed) return;
    this.#socket.end(`${BYE}\n`);
    // A caller that does not close its side is cut once the idle time has passed again.
    const socket = this.#socket;
    this.#deps.clock.setTimer(() => socket.destroy(), this.#deps.idleMs);
  }

  destroy(): void {
    this.#ending = true;
    this.#socket.destroy();
  }
}

/** A call on its way on a stream. */
interface OnItsWay {
  path: string;
  text: string;
  /** When the caller stops waiting, on the clock, and how long it waits in all. */
  end: number;
  timeout: number;
  signal: AbortSignal | undefined;
  timer: ClockTimer;
  resolve(res: HttpResponse): void;
  reject(err: Error): void;
  cleanup(): void;
}

/** What a streaming link needs. */
export interface StreamLinkOptions {
  clock: WallClock;
  /** How long a stream with nothing on its way is kept open, in ms (below the node's idle time). Default 2 s. */
  idleMs?: number;
  /** How long to wait before trying again when a node would not stream, in ms. Default 60 s. */
  retryMs?: number;
}

/** Time for the upgrade to be answered, in ms. */
const OPEN_TIMEOUT_MS = 5000;

/**
 * A link straight to a node's address that carries lone calls in a session
 * on a stream once one is open, and everything else (and calls until it is
 * open, or when the node does not stream) over HTTP, as {@link directLink}.
 * A call's answer and failures read exactly as over HTTP: `ERR_MAYBE_RAN`
 * once it was written and the stream failed, timed out or was given up;
 * sent again over HTTP when the node said `bye` before answering it.
 */
export class StreamLink implements Link {
  readonly key: string;
  readonly #clock: WallClock;
  readonly #idleMs: number;
  readonly #retryMs: number;
  #socket: Socket | undefined;
  #opening: Promise<boolean> | undefined;
  #retryAt = 0;
  #tag = 0;
  readonly #onItsWay = new Map<number, OnItsWay>();
  #idle: ClockTimer | undefined;
  #closed = false;

  constructor(address: string, options: StreamLinkOptions) {
    this.key = address.replace(/\/+$/, '');
    this.#clock = options.clock;
    this.#idleMs = options.idleMs ?? 2000;
    this.#retryMs = options.retryMs ?? 60_000;
  }

  /** True while a stream is open. */
  get streaming(): boolean {
    return this.#socket !== undefined;
  }

  request(
    path: string,
    text: string,
    timeoutMs: number,
    signal?: AbortSignal,
    stream?: StreamReader,
  ): Promise<HttpResponse> {
    if (stream === undefined && !this.#closed && isCall(path) && isSessionMessage(text)) {
      if (this.#socket !== undefined && signal?.aborted !== true) return this.#onStream(path, text, timeoutMs, signal);
      this.#open();
    }
    return this.#overHttp(path, text, timeoutMs, signal, stream);
  }

  #overHttp(
    path: string,
    text: string,
    timeoutMs: number,
    signal?: AbortSignal,
    stream?: StreamReader,
  ): Promise<HttpResponse> {
    return send(`${this.key}${path}`, text, timeoutMs, {
      signal,
      atMostOnce: true,
      ...(stream === undefined ? {} : { stream }),
    });
  }

  /** Ends the stream once nothing is on its way on it; nothing new goes on one. */
  close(): void {
    this.#closed = true;
    if (this.#onItsWay.size === 0) this.#socket?.end();
  }

  /** Resolves once the stream being opened is open (true) or could not be (false); at once when none is. */
  opened(): Promise<boolean> {
    return this.#opening ?? Promise.resolve(this.#socket !== undefined);
  }

  #open(): void {
    if (this.#opening !== undefined || this.#closed || this.#clock.now() < this.#retryAt) return;
    this.#opening = new Promise<boolean>((resolve) => {
      let over = false;
      const done = (socket?: Socket, head?: Buffer): void => {
        if (over) {
          socket?.destroy();
          return;
        }
        over = true;
        timer.cancel();
        this.#opening = undefined;
        if (socket === undefined) this.#retryAt = this.#clock.now() + this.#retryMs;
        else this.#attach(socket, head!);
        resolve(socket !== undefined);
      };
      const req = httpRequest(`${this.key}${STREAM_PATH}`, {
        method: 'PUT',
        agent: false,
        headers: { connection: 'Upgrade', upgrade: STREAM_PROTOCOL, 'content-length': 0 },
      });
      const timer = this.#clock.setTimer(() => req.destroy(), OPEN_TIMEOUT_MS);
      req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
        if (res.statusCode !== 101 || String(res.headers.upgrade).toLowerCase() !== STREAM_PROTOCOL || this.#closed) {
          socket.destroy();
          done();
        } else done(socket, head);
      });
      // A node that does not stream answers as to any other request (404 from a WTD node of before).
      req.on('response', (res) => {
        res.resume();
        done();
      });
      req.on('error', () => done());
      req.end();
    });
  }

  #attach(socket: Socket, head: Buffer): void {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.unref();
    let said = false;
    const lines = new Lines(MAX_RESPONSE_BYTES + 64, (line) => {
      if (line === BYE) {
        said = true;
        this.#detach(socket, 'bye');
        return false;
      }
      if (!this.#answer(line)) {
        this.#detach(socket, 'bad');
        return false;
      }
      return true;
    });
    const take = (chunk: Buffer): void => {
      if (!lines.push(chunk) && !said) this.#detach(socket, 'bad');
    };
    socket.on('data', take);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => this.#detach(socket, said ? 'bye' : 'failed'));
    this.#armIdle();
    if (head.length > 0) take(head);
  }

  /** Reads one answer line; false when it is not one. */
  #answer(line: string): boolean {
    const parts: string[] = [];
    let start = 0;
    for (let i = 0; i < 4; i++) {
      const sp = line.indexOf(' ', start);
      if (sp === -1) return false;
      parts.push(line.slice(start, sp));
      start = sp + 1;
    }
    const [tag, status, retryAfter, type] = parts as [string, string, string, string];
    const n = Number(tag);
    const code = Number(status);
    if (!TAG.test(tag) || !Number.isInteger(code) || code < 100 || code > 599) return false;
    const call = this.#onItsWay.get(n);
    // An answer to a call given up already (it timed out): nobody waits for it.
    if (call === undefined) return true;
    this.#onItsWay.delete(n);
    call.cleanup();
    // The answer to a call of this node's: its next call often follows at once.
    busyWait.poke();
    call.resolve({
      status: code,
      retryAfter: retryAfter === '-' ? undefined : retryAfter,
      contentType: type === '-' ? '' : type,
      text: line.slice(start),
    });
    this.#settled();
    return true;
  }

  #onStream(path: string, text: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<HttpResponse> {
    const socket = this.#socket!;
    const tag = ++this.#tag;
    const target = `${this.key}${path}`;
    return new Promise<HttpResponse>((resolve, reject) => {
      const giveUp = (err: Error): void => {
        if (this.#onItsWay.get(tag) !== call) return;
        this.#onItsWay.delete(tag);
        call.cleanup();
        reject(err);
        this.#settled();
      };
      const abort = (): void =>
        giveUp(new MaybeRanError(target, 'the caller gave it up before an answer came', { cause: signal?.reason }));
      const call: OnItsWay = {
        path,
        text,
        end: this.#clock.now() + timeoutMs,
        timeout: timeoutMs,
        signal,
        timer: this.#clock.setTimer(
          () => giveUp(new MaybeRanError(target, `no answer came within ${timeoutMs} ms`)),
          timeoutMs,
        ),
        resolve,
        reject,
        cleanup: () => {
          call.timer.cancel();
          signal?.removeEventListener('abort', abort);
        },
      };
      signal?.addEventListener('abort', abort, { once: true });
      this.#onItsWay.set(tag, call);
      this.#idle?.cancel();
      this.#idle = undefined;
      socket.ref();
      socket.write(`${tag} ${path} ${text}\n`);
      busyWait.poke();
    });
  }

  /** After a call left the stream: with nothing more on its way, the stream may idle out. */
  #settled(): void {
    if (this.#onItsWay.size > 0) return;
    this.#socket?.unref();
    if (this.#closed) this.#socket?.end();
    else this.#armIdle();
  }

  #armIdle(): void {
    this.#idle?.cancel();
    const socket = this.#socket;
    this.#idle = this.#clock.setTimer(() => {
      if (this.#socket === socket && this.#onItsWay.size === 0) socket?.end();
    }, this.#idleMs);
  }

  /**
   * The stream is gone. After `bye` the calls it did not answer did not
   * run: they go again over HTTP, the same bytes. Otherwise they may have
   * run (`ERR_MAYBE_RAN`), or the node answered what is no answer
   * (`ERR_BAD_REPLY`).
   */
  #detach(socket: Socket, why: 'bye' | 'failed' | 'bad'): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    this.#idle?.cancel();
    this.#idle = undefined;
    if (why === 'bad') socket.destroy();
    else socket.end();
    const calls = [...this.#onItsWay.values()];
    this.#onItsWay.clear();
    for (const call of calls) {
      call.cleanup();
      const target = `${this.key}${call.path}`;
      if (why === 'bye') {
        const left = call.end - this.#clock.now();
        if (left > 0) {
          this.#overHttp(call.path, call.text, left, call.signal).then(call.resolve, call.reject);
          continue;
        }
        call.reject(new CallTimeoutError(target, call.timeout));
      } else if (why === 'bad') {
        call.reject(new WireError('ERR_BAD_REPLY', 502, `${this.key} answered on its stream what is no answer`));
      } else {
        call.reject(new MaybeRanError(target, 'the connection failed before an answer came'));
      }
    }
  }
}

/** The streams of one node (by its clock), by address: shared by its connections to that address. */
const SHARED = new WeakMap<WallClock, Map<string, { link: StreamLink; users: number }>>();

/**
 * A link to `address` on the stream this node (known by its `clock`) keeps
 * to it: every connection of one node to one address shares one stream
 * (the node takes each line on its own, whatever session sealed it), so a
 * caller holds one connection for its streams, and the rest of its share of
 * the node's connections for HTTP. The stream ends when the last of them
 * closes.
 */
export function sharedStreamLink(address: string, clock: WallClock): Link {
  const key = address.replace(/\/+$/, '');
  let byAddress = SHARED.get(clock);
  if (byAddress === undefined) {
    byAddress = new Map();
    SHARED.set(clock, byAddress);
  }
  let shared = byAddress.get(key);
  if (shared === undefined) {
    shared = { link: new StreamLink(key, { clock }), users: 0 };
    byAddress.set(key, shared);
  }
  shared.users++;
  const entry = shared;
  const table = byAddress;
  let closed = false;
  return {
    key,
    request: (path, text, timeoutMs, signal, stream) => entry.link.request(path, text, timeoutMs, signal, stream),
    close: () => {
      if (closed) return;
      closed = true;
      if (--entry.users > 0) return;
      entry.link.close();
      if (table.get(key) === entry) table.delete(key);
    },
  };
}

function isCall(path: string): boolean {
  return path.startsWith('/apply/') || path.startsWith('/behaviour/');
}
