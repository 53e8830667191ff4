import { isTimeZone, type BroadcastSpec } from '@clarion/contracts';

type Window = NonNullable<BroadcastSpec['request']['window']>;

const WEEKDAY: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };
const formatters = new Map<string, Intl.DateTimeFormat>();

function localParts(atMs: number, timeZone: string): { day: number; minutes: number; seconds: number } {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(atMs).map((p) => [p.type, p.value]));
  return {
    day: WEEKDAY[parts.weekday ?? 'Mon'] ?? 1,
    minutes: Number(parts.hour) * 60 + Number(parts.minute),
    seconds: Number(parts.second),
  };
}

const toMinutes = (clock: string): number => Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5));


/**
 * Milliseconds until the calling window is open at `atMs` (0 when open now). Uses the contact's
 * time zone when known; a window with end before start spans midnight. DST edges are corrected
 * by re-checking when the delayed job comes back.
 */
export function msUntilWindowOpens(window: Window, atMs: number, contactTimeZone?: string): number {
  const tz = isTimeZone(contactTimeZone) ? contactTimeZone : window.timezone;
  const start = toMinutes(window.start);
  const end = toMinutes(window.end);
  const days = new Set(window.days);
  const { day, minutes, seconds } = localParts(atMs, tz);
  const overnight = end <= start;
  const inHours = overnight ? minutes >= start || minutes < end : minutes >= start && minutes < end;
  // An overnight window's early-morning part belongs to the previous day's window.
  const windowDay = overnight && minutes < end ? ((day + 5) % 7) + 1 : day;
  if (inHours && days.has(windowDay)) return 0;
  const intoMinute = seconds * 1000 + (atMs % 1000);
  for (let ahead = 0; ahead <= 7; ahead += 1) {
    const candidateDay = ((day - 1 + ahead) % 7) + 1;
    if (!days.has(candidateDay)) continue;
    const delta = ahead * 1440 + start - minutes;
    if (delta > 0) return delta * 60_000 - intoMinute;
  }
  return 7 * 1440 * 60_000;
}
