/**
 * Time as the engine sees it, where a rule depends on it (the DMP deferral): the system clock, or in
 * tests a clock they move by hand, so that "sent after the delay" is proved without waiting for it.
 */
export interface Clock {
  now(): number;
  /** Told when a manual clock jumps forward (the system clock never does). */
  onJump?(listener: (now: number) => Promise<void>): void;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told: `advance` resolves once every listener has caught up. */
export class ManualClock implements Clock {
  private readonly listeners: ((now: number) => Promise<void>)[] = [];

  constructor(private t = Date.now()) {}

  now(): number {
    return this.t;
  }

  onJump(listener: (now: number) => Promise<void>): void {
    this.listeners.push(listener);
  }

  async advance(ms: number): Promise<void> {
    this.t += ms;
    for (const l of this.listeners) await l(this.t);
  }
}
