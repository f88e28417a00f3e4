import { connect, type Socket } from 'node:net';

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

/**
 * Writes a POST of `bodyBytes` bytes whole, then reads, as a client that sends its whole body before it looks at
 * the answer (Python's urllib and http.client): what the write said (`EPIPE` when the server closed the
 * connection under the upload), and everything the server sent.
 */
export function sendWhole(
  port: number | string,
  bodyBytes: number,
): Promise<{ writeError: string | undefined; reply: string }> {
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    let reply = '';
    let writeError: string | undefined;
    socket.on('data', (chunk) => (reply += chunk.toString()));
    socket.on('error', (error: NodeJS.ErrnoException) => (writeError ??= error.code));
    socket.on('close', () => resolve({ writeError, reply }));
    socket.write(
      Buffer.concat([Buffer.from(frameHead(port, bodyBytes)), Buffer.alloc(bodyBytes, 0x78)]),
      (error) => {
        if (error) writeError ??= (error as NodeJS.ErrnoException).code;
      },
    );
  });
}

/**
 * Opens a raw connection to a local server for a request written piece by piece (`socket.write`), and the
 * reply: everything the server sent once the connection closes (or fails).
 */
export function rawConnection(port: number | string): { socket: Socket; reply: Promise<string> } {
  const socket = connect(Number(port), '127.0.0.1');
  const reply = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
  });
  return { socket, reply };
}

/** The head of a frame's POST declaring `contentLength` bytes of JSON, with `extra` header lines (`Expect: …\r\n`). */
export function frameHead(port: number | string, contentLength: number, extra = ''): string {
  return `POST / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${contentLength}\r\n${extra}\r\n`;
}
