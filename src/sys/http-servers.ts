// Health (`/healthz`, `/readyz` — behaviour §1.8) and Prometheus (`/metrics` — §1.11) HTTP servers.
import { createServer, type Server } from 'node:http';

export interface RunningServer {
  readonly port: number;
  close(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const onListening = (): void => {
      server.off('error', reject);
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address !== null ? address.port : port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    };
    if (host === '') server.listen(port, onListening);
    else server.listen(port, host, onListening);
  });
}

/** Rejects (e.g. EADDRINUSE) when the port cannot be bound. `host` "" = all interfaces. */
export function startHealthServer(
  port: number,
  host: string,
  isReady: () => boolean,
): Promise<RunningServer> {
  const server = createServer((request, response) => {
    // The path alone, as Go's ServeMux matches it (a probe may add a query string).
    const url = (request.url ?? '').split('?')[0];
    if (url === '/healthz') {
      response.writeHead(200).end();
    } else if (url === '/readyz') {
      if (isReady()) response.writeHead(200).end();
      // As upstream's http.Error(w, http.StatusText(503), 503).
      else
        response
          .writeHead(503, {
            'content-type': 'text/plain; charset=utf-8',
            'x-content-type-options': 'nosniff',
          })
          .end('Service Unavailable\n');
    } else {
      response.writeHead(404).end();
    }
  });
  return listen(server, port, host);
}

export function startMetricsServer(port: number, host: string, render: () => string): Promise<RunningServer> {
  const server = createServer((request, response) => {
    if ((request.url ?? '').split('?')[0] === '/metrics') {
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(render());
    } else {
      response.writeHead(404).end();
    }
  });
  return listen(server, port, host);
}
