import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  label: string;
  values: (number | null)[];
  color: string;
}

const PAGE = 500;

/**
 * A time series drawn by uPlot (canvas; built for hundreds of thousands of points), inside an element with
 * role="img" and an aria-label, and the same numbers as a table. The table renders only when opened, a page at a
 * time, so 50,000 points cost the page nothing until someone asks for them. `data-render-ms` holds how long the
 * last full draw took, from setData to the end of uPlot's draw hook, and `data-drawn-at` when that draw ended in
 * ms since the navigation started (performance.now()) with how many points it drew: read by the benchmark.
 */
export function TimeChart({ label, xLabel, x, series, height = 240 }: { label: string; xLabel: string; x: number[]; series: Series[]; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [drawn, setDrawn] = useState<{ ms: number; at: number; points: number } | null>(null);
  // uPlot draws after setData returns (it batches in a microtask): the draw hook closes the measurement.
  const drawStart = useRef<number | null>(null);
  const shape = series.map((s) => s.label).join('|');

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    drawStart.current = performance.now();
    const opts: uPlot.Options = {
      width: Math.max(320, el.clientWidth),
      height,
      scales: { x: { time: false } },
      axes: [{ label: xLabel, stroke: '#555' }, { stroke: '#555' }],
      series: [{ label: xLabel }, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: true, points: { show: x.length < 60 } }))],
      legend: { live: true },
      hooks: {
        draw: [
          (u) => {
            if (drawStart.current === null) return;
            const at = performance.now();
            setDrawn({ ms: at - drawStart.current, at, points: u.data[0].length });
            drawStart.current = null;
          },
        ],
      },
    };
    const u = new uPlot(opts, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(320, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
    // A new plot only when the series change; new points go through setData below.
  }, [shape, height, xLabel]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    if (!plot.current) return;
    drawStart.current = performance.now();
    plot.current.setData([x, ...series.map((s) => s.values)] as uPlot.AlignedData);
  }, [x, series]);

  return (
    <figure className="chart" data-points={x.length} data-render-ms={drawn?.ms.toFixed(1)} data-drawn-at={drawn?.at.toFixed(1)} data-drawn-points={drawn?.points}>
      <div ref={box} role="img" aria-label={`${label}: ${x.length} points`} className="chart-canvas" />
      <figcaption>
        {label} ({x.length.toLocaleString('en-US')} points)
      </figcaption>
      <NumbersTable label={label} xLabel={xLabel} x={x} series={series} />
    </figure>
  );
}

function NumbersTable({ label, xLabel, x, series }: { label: string; xLabel: string; x: number[]; series: Series[] }) {
  const [open, setOpen] = useState(false);
  const [page, setPage] = useState(0);
  const pages = Math.max(1, Math.ceil(x.length / PAGE));
  const from = Math.min(page, pages - 1) * PAGE;
  return (
    <details onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>{label} as a table</summary>
      {open ? (
        <>
          <table>
            <caption>{label}</caption>
            <thead>
              <tr>
                <th scope="col">{xLabel}</th>
                {series.map((s) => (
                  <th scope="col" key={s.label}>
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {x.slice(from, from + PAGE).map((xv, i) => (
                <tr key={from + i}>
                  <td>{xv}</td>
                  {series.map((s) => (
                    <td key={s.label}>{s.values[from + i] ?? '—'}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
          {pages > 1 ? (
            <p className="pager">
              <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>
                Previous rows
              </button>{' '}
              rows {from + 1}–{Math.min(from + PAGE, x.length)} of {x.length}{' '}
              <button type="button" disabled={page >= pages - 1} onClick={() => setPage(page + 1)}>
                Next rows
              </button>
            </p>
          ) : null}
        </>
      ) : null}
    </details>
  );
}
