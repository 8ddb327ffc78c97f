/**
 * Installs the `Reflect.getOwnMetadata` / `Reflect.defineMetadata`
 * polyfill (reflect-metadata) that the decorators record into, once.
 *
 * reflect-metadata is a CommonJS module: imported with `import`, Node would
 * first scan its 64 KB source for the names it exports, a scan that costs a
 * node a few MB of memory for as long as it runs (it is what puts Node's
 * optimising compiler to work while a node starts). `require` runs it without
 * the scan, and nothing here needs its exports: it fills in `Reflect`.
 */
/// <reference types="reflect-metadata" />
import { createRequire } from 'node:module';

createRequire(import.meta.url)('reflect-metadata');
