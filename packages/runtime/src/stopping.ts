/**
 * When a generation stops: on an EOS id, on one of the caller's stop ids, or when the text contains one of the
 * caller's stop strings. Text that could still grow into a stop string is held back, so a stream never shows the
 * start of a stop string it then cuts.
 */
export class StopCriteria {
  private readonly eosIds: Set<number>;
  private readonly stopIds = new Set<number>();
  private readonly stopStrings: string[] = [];

  /** `checkId` validates a stop id against the vocabulary (throws RangeError). */
  constructor(stop: ReadonlyArray<number | string>, eosIds: ReadonlyArray<number>, checkId: (id: number) => number) {
    this.eosIds = new Set(eosIds);
    for (const s of stop) {
      if (typeof s === 'number') this.stopIds.add(checkId(s));
      else if (typeof s === 'string' && s.length > 0) this.stopStrings.push(s);
      else throw new TypeError(`stop: expected token ids and non-empty strings, got ${JSON.stringify(s)}`);
    }
  }

  /** 'eos' or 'stop' when `token` ends the generation by itself. */
  tokenStop(token: number): 'eos' | 'stop' | undefined {
    if (this.eosIds.has(token)) return 'eos';
    return this.stopIds.has(token) ? 'stop' : undefined;
  }

  /** Where the first stop string in `text` starts, or −1. */
  firstStop(text: string): number {
    let best = -1;
    for (const s of this.stopStrings) {
      const i = text.indexOf(s);
      if (i >= 0 && (best < 0 || i < best)) best = i;
    }
    return best;
  }

  /** Length of the longest suffix of `text` that could still grow into a stop string (held back for now). */
  heldBack(text: string): number {
    let keep = 0;
    for (const s of this.stopStrings) {
      for (let n = Math.min(s.length - 1, text.length); n > keep; n--) {
        if (text.endsWith(s.slice(0, n))) {
          keep = n;
          break;
        }
      }
    }
    return keep;
  }
}
