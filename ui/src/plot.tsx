/** A uPlot time series that follows its container's width. */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useEffect, useRef } from 'preact/hooks';

export interface Series {
  readonly label: string;
  readonly values: readonly (number | null)[];
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

/** `times` in seconds since the epoch; one line per series; the x axis shows the last `windowSeconds`. */
export function TimePlot(props: { title: string; unit: string; times: readonly number[]; series: readonly Series[]; windowSeconds: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = props.series.map((s) => s.label).join('\n');

  useEffect(() => {
    const el = box.current!;
    const opts: uPlot.Options = {
      width: Math.max(240, el.clientWidth),
      height: 200,
      scales: { x: { time: true, range: (_u, _min, max) => [max - props.windowSeconds, max] }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [{}, { label: props.unit, size: 56 }],
      series: [{}, ...props.series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length]!, width: 2, spanGaps: false, points: { show: true, size: 4 } }))],
      legend: { live: false },
    };
    const u = new uPlot(opts, [[...props.times], ...props.series.map((s) => [...s.values])] as uPlot.AlignedData, el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(240, el.clientWidth), height: 200 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Rebuilt only when the set of series changes; new points go through setData.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape]);

  useEffect(() => {
    plot.current?.setData([[...props.times], ...props.series.map((s) => [...s.values])] as uPlot.AlignedData);
  }, [props.times, props.series]);

  return (
    <figure class="plot">
      <figcaption>{props.title}</figcaption>
      <div ref={box} role="img" aria-label={`${props.title} plot`} />
    </figure>
  );
}
