/**
 * The one place the client touches `window` and `document`: it hears when a page comes back — the
 * network returns (`online`), the tab becomes visible again (`visibilitychange`), the page is
 * restored from the back/forward cache (`pageshow`) — so the client can check its link at once
 * instead of waiting for the heartbeat deadline (PROTOCOL.md §11).
 */

interface PageLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
  document?: { visibilityState?: string; addEventListener(type: string, listener: () => void): void; removeEventListener(type: string, listener: () => void): void };
}

/** Calls `wake` on each of those moments; returns the function that stops listening. Outside a page it does nothing. */
export function watchPage(wake: () => void): () => void {
  const page = globalThis as unknown as Partial<PageLike>;
  const document = page.document;
  if (typeof page.addEventListener !== 'function' || !document) return () => {};
  const onVisibility = (): void => {
    if (document.visibilityState === 'visible') wake();
  };
  page.addEventListener('online', wake);
  page.addEventListener('pageshow', wake);
  document.addEventListener('visibilitychange', onVisibility);
  return () => {
    page.removeEventListener?.('online', wake);
    page.removeEventListener?.('pageshow', wake);
    document.removeEventListener('visibilitychange', onVisibility);
  };
}

/**
 * Calls `freeze` when the page is about to be frozen (a background tab the browser suspends) or to
 * go away (`pagehide`), and `resume` when it runs again (`resume`, or `pageshow` from the
 * back/forward cache) ([Page Lifecycle](https://wicg.github.io/page-lifecycle/)); returns the
 * function that stops listening. Outside a page it does nothing.
 */
export function watchFreeze(freeze: () => void, resume: () => void): () => void {
  const page = globalThis as unknown as Partial<PageLike>;
  const document = page.document;
  if (!document || typeof page.addEventListener !== 'function') return () => {};
  document.addEventListener('freeze', freeze);
  document.addEventListener('resume', resume);
  page.addEventListener('pagehide', freeze);
  page.addEventListener('pageshow', resume);
  return () => {
    document.removeEventListener('freeze', freeze);
    document.removeEventListener('resume', resume);
    page.removeEventListener?.('pagehide', freeze);
    page.removeEventListener?.('pageshow', resume);
  };
}
