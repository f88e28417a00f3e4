import { connect } from 'node:net';

/**
 * Writes `text` (a request, whole or cut short) to a local server on a raw socket, and resolves with everything the
 * server sent once it closes the connection: to see the answers Node writes itself (408), or two on one connection.
 */
export function rawRequest(port: number | string, text: string): Promise<string> {
  const socket = connect(Number(port), '127.0.0.1');
  const reply = new Promise<string>((resolve) => {
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString()));
    socket.on('close', () => resolve(received));
  });
  socket.write(text);
  return reply;
}
