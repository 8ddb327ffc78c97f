/**
 * A reader of newline-ended lines with a bound on their length: what the
 * stream protocols (calls on a stream, a node's stream to its proxy) read.
 * @module
 */

/** Splits bytes into lines of at most `max` bytes (not counting the newline); `false` from `line` stops it. */
export class Lines {
  #partial: Buffer[] = [];
  #bytes = 0;
  readonly #max: number;
  readonly #line: (text: string) => boolean;
  /** Set once a line was too long or `line` said stop: nothing more is read. */
  stopped = false;

  readonly #encoding: BufferEncoding;

  /** `encoding` decodes each line: latin1 (the default) for lines of ASCII, utf8 for JSON. */
  constructor(max: number, line: (text: string) => boolean, encoding: BufferEncoding = 'latin1') {
    this.#max = max;
    this.#line = line;
    this.#encoding = encoding;
  }

  /** Takes the next bytes; false once a line is longer than allowed. */
  push(chunk: Buffer): boolean {
    let start = 0;
    while (!this.stopped) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      this.#bytes += end - start;
      if (this.#bytes > this.#max) {
        this.stopped = true;
        this.#partial = [];
        return false;
      }
      if (nl === -1) {
        if (start < chunk.length) this.#partial.push(chunk.subarray(start));
        return true;
      }
      this.#partial.push(chunk.subarray(start, nl));
      const text =
        this.#partial.length === 1
          ? this.#partial[0]!.toString(this.#encoding)
          : Buffer.concat(this.#partial).toString(this.#encoding);
      this.#partial = [];
      this.#bytes = 0;
      start = nl + 1;
      if (!this.#line(text)) this.stopped = true;
    }
    return true;
  }
}
