import { randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { NotSerializableError, WireError } from '../errors.js';
import { Process } from '../runtime/process.js';
import type { Node } from '../runtime/node.js';
import { NODE_ID, Pid, PROCESS } from '../runtime/pid.js';
import type { BilletDoux } from '../wire/codec.js';

/** Who may send to a pid that was handed out, and how to check them. */
export interface PidSender {
  /** The kid their messages are signed with. */
  kid: string;
  key: KeyObject;
  /** False once whatever carried the pid (a grant) is no longer valid. */
  valid(): boolean;
  /** Told each time a pid is handed to this sender (a direct connection then polls for messages to it). */
  handed?(): void;
}

interface Handed {
  pid: Pid;
  sender: PidSender;
}

/** How messages to a remote pid leave this node. */
export interface PidRoute {
  /** Sends `msg` to pid `id` on the remote node, proving the right to with `token`. Fire and forget. */
  sendToPid(id: number, token: string, msg: unknown): void;
  /**
   * Sends a monitor signal about pid `id` the same way; resolves once it is
   * on its way (through an outbox) or accepted (a request), rejects with
   * the refusal. Absent: this route carries no monitors.
   */
  signal?(id: number, signal: RouteSignal): Promise<void>;
  /** Who is at the other end: the key id its signals are signed under here, and its node id. */
  peer?: { kid: string; nodeId: string };
  /** Told when a monitor is set through this route (a direct connection then polls for the answer). */
  watching?(): void;
  /**
   * For a grantee that polls this node for its messages: how long, in ms,
   * it has had no poll open here (0 while one is held); undefined when it
   * does not poll (its messages are relayed).
   */
  silence?(): number | undefined;
}

/** A monitor signal as a route sends it: the reason not yet encoded. */
export interface RouteSignal {
  op: 'monitor' | 'demonitor' | 'down';
  ref: string;
  token: string;
  reason?: unknown;
  refused?: string;
}

/** A stand-in for a process on another node: sending to it sends over the wire. */
export class RemoteMailbox {
  constructor(
    readonly route: PidRoute,
    readonly id: number,
    readonly token: string,
  ) {}
  _deliver(msg: unknown): void {
    this.route.sendToPid(this.id, this.token, msg);
  }
}

/**
 * The pids this node has handed to other nodes (each with an unguessable
 * token and the one sender allowed to use it), and the proxy pids it made
 * for billets-doux it received.
 */
export class PidRegistry {
  // token -> the local pid and who may send to it
  readonly #handed = new Map<string, Handed>();
  // `${pid.id}/${sender kid}` -> token, so a pid handed twice to the same sender keeps one token
  readonly #tokens = new Map<string, string>();

  constructor(
    readonly node: Node,
    readonly nodeId: string,
  ) {}

  /** Hands local `pid` to `sender`: returns the billet-doux to put on the wire. */
  hand(pid: Pid, sender: PidSender): BilletDoux {
    const proc = pid[PROCESS];
    if (!(proc instanceof Process) || proc.node !== this.node) {
      throw new NotSerializableError(pid, `${pid} is not a pid of this node, and only a node's own pids can be sent`);
    }
    sender.handed?.();
    const key = `${pid.id}/${sender.kid}`;
    let token = this.#tokens.get(key);
    if (token === undefined) {
      token = randomBytes(16).toString('base64url');
      this.#tokens.set(key, token);
      this.#handed.set(token, { pid, sender });
      const t = token;
      void this.node.exited(pid).then(() => {
        this.#handed.delete(t);
        this.#tokens.delete(key);
      });
    }
    return { node: this.nodeId, name: this.node.name, id: pid.id, token };
  }

  /** The local pid `token` stands for, if `kid` is the sender it was handed to and is still valid. */
  accept(id: number, token: string, kid: string): Handed | undefined {
    const handed = this.#handed.get(token);
    if (handed === undefined || handed.pid.id !== id || handed.sender.kid !== kid) return undefined;
    return handed;
  }

  /** A proxy pid for a billet-doux from another node; sends go out through `route`. */
  proxy(billet: BilletDoux, route: PidRoute): Pid {
    if (billet.node === this.nodeId) {
      throw new WireError('ERR_BAD_PID', 400, 'a pid cannot claim to live on the node it is sent to');
    }
    // It prints with the node's name, as the node's own pids do; it is told apart by the node's id.
    const pid = new Pid(billet.name ?? billet.node, billet.id, 0, new RemoteMailbox(route, billet.id, billet.token));
    pid[NODE_ID] = billet.node;
    return pid;
  }
}
