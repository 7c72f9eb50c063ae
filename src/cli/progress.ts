/**
 * Progress on stderr, so stdout stays for results (and --json). On a terminal: one line redrawn in place. In a CI
 * log (not a TTY): a plain line at most every few seconds and at each 10% step, so the log stays readable.
 */
export class Progress {
  private readonly tty = Boolean(process.stderr.isTTY);
  private lastPrint = 0;
  private lastDecile = -1;
  private drawn = false;

  constructor(private readonly label: string, private readonly quiet = false) {}

  update(done: number, total: number | null, detail = ''): void {
    if (this.quiet) return;
    const fraction = total ? Math.min(1, done / total) : null;
    const now = Date.now();
    if (this.tty) {
      const width = 28;
      const bar = fraction === null ? '' : `[${'#'.repeat(Math.round(fraction * width)).padEnd(width, '.')}] ${(fraction * 100).toFixed(0).padStart(3)}% `;
      process.stderr.write(`\r\x1b[2K${this.label} ${bar}${detail}`);
      this.drawn = true;
      return;
    }
    const decile = fraction === null ? -1 : Math.floor(fraction * 10);
    if (decile > this.lastDecile || now - this.lastPrint > 5000) {
      this.lastDecile = Math.max(decile, this.lastDecile);
      this.lastPrint = now;
      process.stderr.write(`${this.label}${fraction === null ? '' : ` ${(fraction * 100).toFixed(0)}%`} ${detail}\n`);
    }
  }

  done(message: string): void {
    if (this.quiet) return;
    if (this.tty && this.drawn) process.stderr.write('\r\x1b[2K');
    process.stderr.write(`${message}\n`);
  }
}

export const formatBytes = (n: number) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
