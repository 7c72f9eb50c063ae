export interface Bar {
  label: string;
  value: number;
  /** An interval drawn as a whisker (e.g. a 95% confidence interval). */
  low?: number;
  high?: number;
}

/**
 * A small bar chart (a histogram, accuracy per target, tokens per day) as SVG, with role="img", an aria-label and
 * the numbers as a table. Few bars, so plain SVG: the large series go through uPlot (time-chart.tsx).
 */
export function BarChart({ label, bars, format = (v) => v.toLocaleString('en-US'), max, unit = '' }: { label: string; bars: Bar[]; format?: (v: number) => string; max?: number; unit?: string }) {
  const top = max ?? Math.max(1e-9, ...bars.map((b) => b.high ?? b.value));
  const rowH = 26;
  const labelW = 170;
  const width = 640;
  const plotW = width - labelW - 90;
  const x = (v: number) => labelW + (Math.max(0, v) / top) * plotW;
  return (
    <figure className="chart">
      <svg role="img" aria-label={label} viewBox={`0 0 ${width} ${bars.length * rowH + 8}`} className="bars">
        {bars.map((b, i) => (
          <g key={b.label} transform={`translate(0 ${i * rowH + 4})`}>
            <text x={labelW - 8} y={rowH / 2 + 4} textAnchor="end" className="bar-label">
              {b.label.length > 24 ? `${b.label.slice(0, 23)}…` : b.label}
            </text>
            <rect x={labelW} y={4} width={Math.max(1, x(b.value) - labelW)} height={rowH - 10} rx={2} className="bar" />
            {b.low !== undefined && b.high !== undefined ? (
              <g className="whisker">
                <line x1={x(b.low)} x2={x(b.high)} y1={rowH / 2 - 1} y2={rowH / 2 - 1} />
                <line x1={x(b.low)} x2={x(b.low)} y1={6} y2={rowH - 8} />
                <line x1={x(b.high)} x2={x(b.high)} y1={6} y2={rowH - 8} />
              </g>
            ) : null}
            <text x={Math.max(x(b.value), x(b.high ?? 0)) + 6} y={rowH / 2 + 4} className="bar-value">
              {format(b.value)}
              {unit}
            </text>
          </g>
        ))}
      </svg>
      <details>
        <summary>{label} as a table</summary>
        <table>
          <caption>{label}</caption>
          <thead>
            <tr>
              <th scope="col">Label</th>
              <th scope="col">Value</th>
              {bars.some((b) => b.low !== undefined) ? <th scope="col">Interval</th> : null}
            </tr>
          </thead>
          <tbody>
            {bars.map((b) => (
              <tr key={b.label}>
                <td>{b.label}</td>
                <td>
                  {format(b.value)}
                  {unit}
                </td>
                {b.low !== undefined ? (
                  <td>
                    {format(b.low)}–{format(b.high ?? b.value)}
                    {unit}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
