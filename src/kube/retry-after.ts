// The wait an API server asks for (both of our clients honour it: the plugin's pod lookup and the agent's repair).

/** client-go's checkWait: a 429 or 5xx answer's `Retry-After` in whole seconds (the HTTP-date form is ignored). */
export function retryAfterMs(status: number, header: string | undefined): number | undefined {
  if (status !== 429 && status < 500) return undefined;
  const value = header?.trim() ?? '';
  return /^\d{1,6}$/.test(value) ? Number(value) * 1000 : undefined;
}
