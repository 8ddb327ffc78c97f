/**
 * Where nodes behind home routers meet: the proxy, its status, and what a node reads of its directory.
 * @module Proxy
 */
export { WtdProxy, Proxy } from '../../lib/index.js';
export type { DirectoryEntry, ProxyOptions, ProxyStatus, ProxyNodeStatus, StatusQuery } from '../../lib/index.js';
