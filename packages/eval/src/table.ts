/** A results table: column names and rows of cells. Numbers are formatted for markdown, kept raw for JSON. */
export interface Table {
  title?: string;
  columns: string[];
  rows: (string | number | null)[][];
}

export interface CellFormat {
  /** significant decimals for non-integers (default 3) */
  digits?: number;
}

export function formatCell(value: string | number | null, format: CellFormat = {}): string {
  if (value === null) return '—';
  if (typeof value === 'string') return value;
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '-∞';
  if (Number.isInteger(value)) return String(value);
  const digits = format.digits ?? 3;
  const abs = Math.abs(value);
  if (abs >= 1000) return value.toFixed(0);
  if (abs >= 100) return value.toFixed(Math.max(0, digits - 2));
  if (abs >= 1) return value.toFixed(Math.max(0, digits - 1));
  return String(Number(value.toFixed(digits)));
}

function checkTable(table: Table): void {
  if (table.columns.length === 0) throw new RangeError('table: needs at least one column');
  table.rows.forEach((row, i) => {
    if (row.length !== table.columns.length) {
      throw new RangeError(`table: row ${i} has ${row.length} cells, expected ${table.columns.length}`);
    }
  });
}

const escapeCell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** GitHub-flavoured markdown; numeric columns are right-aligned. */
export function toMarkdown(table: Table, format: CellFormat = {}): string {
  checkTable(table);
  const numeric = table.columns.map(
    (_, c) => table.rows.length > 0 && table.rows.every((row) => typeof row[c] === 'number' || row[c] === null),
  );
  const cells = table.rows.map((row) => row.map((v) => escapeCell(formatCell(v, format))));
  const header = table.columns.map(escapeCell);
  const widths = header.map((h, c) => Math.max(3, h.length, ...cells.map((row) => row[c].length)));
  const pad = (text: string, c: number) => (numeric[c] ? text.padStart(widths[c]) : text.padEnd(widths[c]));
  const line = (parts: string[]) => `| ${parts.join(' | ')} |`;
  const rule = widths.map((w, c) => (numeric[c] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w)));
  const out = [line(header.map(pad)), line(rule), ...cells.map((row) => line(row.map(pad)))];
  if (table.title) out.unshift(`### ${table.title}`, '');
  return out.join('\n') + '\n';
}

/** Rows as objects keyed by column name (non-finite numbers become null, as JSON has no NaN). */
export function toRecords(table: Table): Record<string, string | number | null>[] {
  checkTable(table);
  return table.rows.map((row) =>
    Object.fromEntries(
      table.columns.map((name, c) => {
        const v = row[c];
        return [name, typeof v === 'number' && !Number.isFinite(v) ? null : v];
      }),
    ),
  );
}
