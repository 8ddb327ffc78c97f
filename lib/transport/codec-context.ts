import type { WireCodec } from '../wire/codec.js';
import type { PidRoute, PidSender } from './pid-registry.js';

/**
 * What the codec needs to know in one exchange: to whom our pids in it are
 * handed (`sender` may send to them), and how messages to their pids leave
 * this node (`route`).
 */
export interface CodecContext {
  sender: PidSender;
  route: PidRoute;
}

/** The node's wire codec, with pid hooks that take a {@link CodecContext}. */
export type NodeCodec = WireCodec<CodecContext>;
