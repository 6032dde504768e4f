// systemd integration for Type=notify: READY=1 once listening, WATCHDOG=1 from the event loop (a stuck loop
// misses its pings and systemd restarts the service), STOPPING=1 on shutdown. Silent without NOTIFY_SOCKET.
import type { Logger } from '../common/log';

export type SendNotification = (socketPath: string, state: string) => void;

export class SystemdNotifier {
  private watchdog: NodeJS.Timeout | undefined;

  constructor(
    private readonly send: SendNotification,
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  ready(status: string): void {
    this.notify(`READY=1\nSTATUS=${status}`);
    this.startWatchdog();
  }

  stopping(): void {
    clearInterval(this.watchdog);
    this.notify('STOPPING=1');
  }

  /** Pings at half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises, if the watchdog is meant for us. */
  private startWatchdog(): void {
    const usec = Number(this.env.WATCHDOG_USEC);
    const pid = this.env.WATCHDOG_PID;
    if (!(usec > 0) || (pid !== undefined && Number(pid) !== process.pid)) return;
    this.watchdog = setInterval(() => this.notify('WATCHDOG=1'), Math.max(1, Math.floor(usec / 2000)));
    this.watchdog.unref();
  }

  private notify(state: string): void {
    const socketPath = this.env.NOTIFY_SOCKET;
    if (!socketPath) return;
    try {
      this.send(socketPath, state);
    } catch (error) {
      this.log.warn('systemd notification failed', { err: (error as Error).message });
    }
  }
}
