// Hands Node's HTTP parser one request at a time. Node parses every request of a chunk it has read, up to
// 64 KiB, and makes a request and a response object for each before any handler can say no: one chunk of
// pipelined `GET /metrics` is ~2,000 pairs (~1.7 KB each), and 50 such connections exhaust a 64 MB heap. So
// the parser gets the bytes up to the end of one request head (CRLF CRLF: Node refuses bare LF); the next
// once that request is answered. Bytes with no head end in them cannot make a request and go straight on
// (the parser applies its own header size limit and timeouts to them). What waits is bytes, bounded per
// connection; a client that sends more than that while its request is answered is closed.
//
// Node reads a socket in C++ straight into its parser unless the socket has a 'data' listener of its own;
// its connection listener has registered its one 'data' listener (the parser's feed) by the time ours runs.
// We take that listener off, and call it ourselves.
import type { Duplex } from 'node:stream';

const HEAD_END = Buffer.from('\r\n\r\n');

export interface RequestFramer {
  /** A request of this connection reached the handler. */
  started(): void;
  /** That request is answered: the parser may have the next one. */
  done(): void;
}

/**
 * Puts `socket` (one Node's HTTP server has just taken on) under a framer. Returns undefined, and leaves the
 * socket as it is, if Node's parser is not wired as expected.
 */
export function frameRequests(socket: Duplex, maxBufferedBytes: number): RequestFramer | undefined {
  const listeners = socket.listeners('data');
  if (listeners.length !== 1) return undefined;
  const feedParser = listeners[0] as (chunk: Buffer) => void;
  socket.removeListener('data', feedParser);

  let pending: Buffer = Buffer.alloc(0);
  let answering = false; // a request was handed to the parser and is not answered yet
  let sawRequest = false;
  const pump = () => {
    while (!answering && !socket.destroyed && pending.length > 0) {
      const end = pending.indexOf(HEAD_END);
      if (end < 0) {
        feedParser(pending);
        pending = Buffer.alloc(0);
        return;
      }
      const head = pending.subarray(0, end + HEAD_END.length);
      pending = pending.subarray(head.length);
      sawRequest = false;
      feedParser(head);
      // Bytes that made no request (blank lines, the rest of a body) leave the way open for the next head.
      answering = sawRequest;
    }
  };
  // Adding a 'data' listener switches Node's parser from reading in C++ to these calls.
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    pump();
    if (pending.length > maxBufferedBytes) socket.destroy();
  });
  return {
    started: () => {
      sawRequest = true;
    },
    done: () => {
      answering = false;
      pump();
    },
  };
}
