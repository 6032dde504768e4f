// Reads a file only if it is at most `limit` bytes: the size is checked with fstat on the open descriptor
// before reading, and at most limit + 1 bytes are read, so a file that grows meanwhile, or a device or FIFO
// that reports no size, cannot make us read more.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Formats a byte count for messages: 1 MiB, 64 KiB, 4.4 MB. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes >> 20} MiB`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes >> 10} KiB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} bytes`;
}

export class TooLargeError extends Error {}

/** The file's bytes; throws TooLargeError (naming the size and the limit) when it holds more than `limit`. */
export function readBounded(file: string, limit: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > limit) throw new TooLargeError(`it is ${formatBytes(size)}, over the limit of ${formatBytes(limit)}`);
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    for (let read = -1; read !== 0 && length <= limit; length += read) read = readSync(fd, buffer, length, limit + 1 - length, null);
    if (length > limit) throw new TooLargeError(`it holds more than the limit of ${formatBytes(limit)}`);
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}
