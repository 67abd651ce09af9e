// Python's strftime, for oslo.log's log_date_format: the directives a log date uses, in UTC.

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** oslo.log's default log_date_format. */
export const DEFAULT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S";

/** The directives strftime understands here (anything else is refused when the option is read). */
export const DIRECTIVES = "aAbBcdeFHIjmMpSTyYzZ%";

/** `date` in UTC as Python's time.strftime(format) writes it, for the directives in DIRECTIVES. */
export function strftime(format: string, date: Date): string {
  const dayOfYear = Math.floor((date.getTime() - Date.UTC(date.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
  const h = date.getUTCHours();
  const one = (c: string): string => {
    switch (c) {
      case "a":
        return DAYS[date.getUTCDay()].slice(0, 3);
      case "A":
        return DAYS[date.getUTCDay()];
      case "b":
        return MONTHS[date.getUTCMonth()].slice(0, 3);
      case "B":
        return MONTHS[date.getUTCMonth()];
      case "c":
        return strftime("%a %b %e %H:%M:%S %Y", date);
      case "d":
        return pad(date.getUTCDate());
      case "e":
        return String(date.getUTCDate()).padStart(2, " ");
      case "F":
        return strftime("%Y-%m-%d", date);
      case "H":
        return pad(h);
      case "I":
        return pad(h % 12 || 12);
      case "j":
        return pad(dayOfYear, 3);
      case "m":
        return pad(date.getUTCMonth() + 1);
      case "M":
        return pad(date.getUTCMinutes());
      case "p":
        return h < 12 ? "AM" : "PM";
      case "S":
        return pad(date.getUTCSeconds());
      case "T":
        return strftime("%H:%M:%S", date);
      case "y":
        return pad(date.getUTCFullYear() % 100);
      case "Y":
        return String(date.getUTCFullYear());
      case "z":
        return "+0000";
      case "Z":
        return "UTC";
      default:
        return c;
    }
  };
  return format.replace(/%(.)/g, (_, c: string) => one(c));
}

/** Why a format is refused (a directive not in DIRECTIVES, or a lone % at the end); undefined when it is usable. */
export function badDateFormat(format: string): string | undefined {
  for (const m of format.matchAll(/%(.?)/g)) {
    if (!m[1]) return "ends with a lone %";
    if (!DIRECTIVES.includes(m[1])) return `%${m[1]} is not a supported strftime directive`;
  }
  return undefined;
}
