/** Renders rows of cells as an aligned text table or a Markdown table. */

export type Align = 'left' | 'right';

export interface Table {
  readonly headers: readonly string[];
  /** Per column; left when missing. */
  readonly align?: readonly Align[];
  readonly rows: readonly (readonly string[])[];
}

export function renderText(table: Table): string {
  const widths = table.headers.map((h, i) => Math.max(h.length, ...table.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => {
        const w = widths[i] ?? 0;
        return table.align?.[i] === 'right' ? c.padStart(w) : c.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return [line(table.headers), widths.map((w) => '-'.repeat(w)).join('  '), ...table.rows.map(line)].join('\n');
}

export function renderMarkdown(table: Table): string {
  const escapePipes = (c: string): string => c.replaceAll('|', '\\|');
  const sep = table.headers.map((_, i) => (table.align?.[i] === 'right' ? '---:' : '---'));
  return [table.headers, sep, ...table.rows].map((r) => `| ${r.map(escapePipes).join(' | ')} |`).join('\n');
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 123456.7 -> "123,457" */
export function formatCount(n: number): string {
  return integer.format(n);
}

export function formatFixed(n: number, digits: number): string {
  return n.toFixed(digits);
}
