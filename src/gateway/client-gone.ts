import type { CancelSignal } from '../serving/openai-http';

/**
 * Tells the upstream call of one gateway request that its client went away. The transport takes an AbortSignal,
 * but an AbortController per request (an EventTarget, its signal, a listener object) showed in the gateway's CPU
 * profile; this holds the one or two listeners a request ever registers in an array.
 */
export class ClientGone implements CancelSignal {
  aborted = false;
  private listeners: (() => void)[] | null = null;

  addEventListener(_type: 'abort', listener: () => void, _options?: { once?: boolean }): void {
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }

  /** Calls every listener once (an AbortSignal's listeners added with `once`, as the transport adds them). */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.listeners ?? [];
    this.listeners = null;
    for (const listener of listeners) listener();
  }
}
