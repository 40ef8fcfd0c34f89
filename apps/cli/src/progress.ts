/** Where progress goes: a TTY gets a redrawn bar; anything else a compact line every 15 s and one at the end. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  stream: ProgressStream;
  /** no output at all (--json, --quiet) */
  quiet: boolean;
  now?: () => number;
}

const SECOND = 1000;
/** Without a terminal, a progress line at most this often. */
const LOG_INTERVAL = 15 * SECOND;

function formatDuration(ms: number): string {
  const s = ms / SECOND;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}

/**
 * A progress bar for one task of `total` units. Draws nothing during the first second so quick tasks stay silent,
 * redraws at most ten times a second, and erases itself when done. Logs (no TTY) get a line every 15 s instead.
 */
export class Progress {
  private done = 0;
  private readonly start: number;
  private lastDraw = 0;
  private drawn = false;
  private detail = '';
  private readonly now: () => number;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly options: ProgressOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.start = this.now();
  }

  tick(units = 1, detail?: string): void {
    this.done = Math.min(this.total, this.done + units);
    if (detail !== undefined) this.detail = detail;
    this.draw();
  }

  set(done: number, detail?: string): void {
    this.done = Math.min(this.total, done);
    if (detail !== undefined) this.detail = detail;
    this.draw();
  }

  /** Ends the bar with one summary line, written when the task took over a second or a summary is given. */
  finish(summary?: string): void {
    const { stream, quiet } = this.options;
    if (quiet) return;
    const elapsed = this.now() - this.start;
    if (stream.isTTY && this.drawn) stream.write('\r\x1b[2K');
    if (elapsed >= SECOND || summary) {
      stream.write(`${this.label}: ${summary ?? `${this.done}/${this.total}`} (${formatDuration(elapsed)})\n`);
    }
  }

  private draw(): void {
    const { stream, quiet } = this.options;
    if (quiet) return;
    const t = this.now();
    const frac = this.total > 0 ? this.done / this.total : 0;
    const elapsed = t - this.start;
    const eta = frac > 0 ? (elapsed / frac) * (1 - frac) : Number.NaN;
    const etaText = Number.isFinite(eta) ? ` eta ${formatDuration(eta)}` : '';
    if (!stream.isTTY) {
      // logs get a compact line now and then instead of a redrawn bar
      if (t - this.lastDraw < LOG_INTERVAL || elapsed < LOG_INTERVAL) return;
      this.lastDraw = t;
      stream.write(`${this.label}: ${this.done}/${this.total}${etaText}\n`);
      return;
    }
    if (elapsed < SECOND || t - this.lastDraw < 100) return;
    this.lastDraw = t;
    const width = Math.max(10, Math.min(30, (stream.columns ?? 80) - 60));
    const filled = Math.round(frac * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    let line = `${this.label} ${bar} ${this.done}/${this.total}${etaText}${this.detail ? `  ${this.detail}` : ''}`;
    const cols = stream.columns ?? 80;
    if (line.length > cols - 1) line = line.slice(0, cols - 1);
    stream.write(`\r\x1b[2K${line}`);
    this.drawn = true;
  }
}
