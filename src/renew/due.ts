const DAY = 24 * 60 * 60 * 1000;

/**
 * When a certificate should be renewed without ARI: with a third of its lifetime left, or half
 * for lifetimes under 10 days (short-lived certificates). `renewDays` overrides: that many days
 * before notAfter.
 */
export function fallbackRenewalTime(notBefore: Date, notAfter: Date, renewDays?: number): Date {
  if (renewDays !== undefined) return new Date(notAfter.getTime() - renewDays * DAY);
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const share = lifetime < 10 * DAY ? 1 / 2 : 1 / 3;
  return new Date(notAfter.getTime() - lifetime * share);
}

export function daysLeft(notAfter: Date, now: Date = new Date()): number {
  return Math.floor((notAfter.getTime() - now.getTime()) / DAY);
}
