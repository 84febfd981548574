// Runs inside the lab node's network namespace (started with `nsenter --net=…`): listens on 127.0.0.1:<port> there
// and pipes every connection to a unix socket that the test process serves from the host namespace. That is how the
// plugin, executed by containerd inside the node netns, reaches the API test server at the same URL the agent uses.
import net from 'node:net';

const [portArg, unixPath] = process.argv.slice(2);
if (portArg === undefined || unixPath === undefined) {
  process.stderr.write('usage: forwarder.ts <port> <unix socket>\n');
  process.exit(2);
}
const server = net.createServer((client) => {
  const upstream = net.connect(unixPath);
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(Number(portArg), '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
