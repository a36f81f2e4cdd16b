/** Every published source and its events, with fields and description (GET /event-hooks/sources). */
import { api } from '../api';
import { Empty, ErrorBox, Link, Spinner, useLoad } from '../components';
import type { Sources as SourceMap } from '../types';

export function Sources() {
  const { data, error, loading } = useLoad(() => api<{ data: SourceMap }>('GET', '/event-hooks/sources').then((r) => r.data), []);
  const names = Object.keys(data ?? {}).sort();
  return (
    <section aria-labelledby="h-sources">
      <h1 id="h-sources">Sources</h1>
      <p class="muted">What event hooks can listen to: the built-in sources and the ones plugins published.</p>
      <ErrorBox error={error} />
      <Spinner on={loading && !data} />
      {data && names.length === 0 ? <Empty>No sources published yet.</Empty> : null}
      {names.map((source) => (
        <article key={source} class="source" aria-labelledby={`src-${source}`}>
          <h2 id={`src-${source}`}>{source}</h2>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Event</th>
                  <th scope="col">Fields</th>
                  <th scope="col">Description</th>
                  <th scope="col" />
                </tr>
              </thead>
              <tbody>
                {Object.entries(data![source]!).map(([event, spec]) => (
                  <tr key={event}>
                    <td>
                      <code>{event}</code>
                    </td>
                    <td class="wrap">
                      {spec.fields.length ? spec.fields.map((f) => <code key={f}>{f} </code>) : <span class="muted">none</span>}
                      {spec.unique?.length ? <small class="muted"> unique: {spec.unique.join(', ')}</small> : null}
                    </td>
                    <td class="wrap">{spec.description ?? <span class="muted">—</span>}</td>
                    <td>
                      <Link to={`/hooks/new?source=${encodeURIComponent(source)}&event=${encodeURIComponent(event)}`}>hook it</Link>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </article>
      ))}
    </section>
  );
}
