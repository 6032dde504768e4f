// Worker thread of PasswordChecker: bcrypt comparisons, off the event loop that serves scrapes.
import bcrypt from 'bcryptjs';
import { parentPort } from 'node:worker_threads';

export interface CompareRequest {
  id: number;
  password: string;
  hash: string;
}

parentPort?.on('message', ({ id, password, hash }: CompareRequest) => {
  parentPort?.postMessage({ id, ok: bcrypt.compareSync(password, hash) });
});
