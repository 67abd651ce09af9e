// oslo.policy's rule language compiled to checks: operators, rule: references, generic checks, list-of-lists.

/** The caller as a check sees it (oslo's creds). */
export type Creds = Record<string, unknown>;
/** The object acted on (oslo's target). */
export type Target = Record<string, unknown>;
/** A compiled rule: given the target, the caller and every named rule, whether it allows. */
export type Check = (target: Target, creds: Creds, rules: Map<string, Check>) => boolean;

/** A rule or policy file the node cannot use; the message names the rule (and the file). Thrown at startup. */
export class PolicyError extends Error {}
const always: Check = () => true;
const never: Check = () => false;

/** Python's `"%(key)s" % target`; undefined when a key is missing (the check then fails, as in oslo). */
function substitute(text: string, target: Target): string | undefined {
  let missing = false;
  const out = text.replace(/%\(([^)]*)\)s/g, (_, key: string) => {
    if (!(key in target)) {
      missing = true;
      return "";
    }
    return pyStr(target[key]);
  });
  return missing ? undefined : out;
}

function pyStr(v: unknown): string {
  if (v === true) return "True";
  if (v === false) return "False";
  if (v === null || v === undefined) return "None";
  return String(v);
}

/** ast.literal_eval of a check's left side, for the forms policy files use: 'str', "str", True, False, None, numbers. */
function literal(kind: string): string | undefined {
  if (/^'[^']*'$/.test(kind) || /^"[^"]*"$/.test(kind)) return kind.slice(1, -1);
  if (kind === "True" || kind === "False" || kind === "None") return kind;
  if (/^-?\d+$/.test(kind)) return String(Number(kind));
  return undefined;
}

/** oslo.policy's GenericCheck: match (after substitution) against a literal or a value in creds (dotted path). */
function genericCheck(kind: string, match: string): Check {
  const lit = literal(kind);
  const path = kind.split(".");
  return (target, creds) => {
    const m = substitute(match, target);
    if (m === undefined) return false;
    if (lit !== undefined) return m === lit;
    return findIn(creds, path, m);
  };
}

function findIn(value: unknown, path: string[], match: string): boolean {
  if (path.length === 0) return match === pyStr(value);
  if (value === null || typeof value !== "object" || !(path[0] in value)) return false;
  const next = (value as Record<string, unknown>)[path[0]];
  if (Array.isArray(next)) return next.some((v) => findIn(v, path.slice(1), match));
  return findIn(next, path.slice(1), match);
}

/** One check token: "@", "!", role:X, rule:NAME or a generic kind:match. */
function parseCheck(token: string, refs: Set<string>): Check {
  if (token === "@") return always;
  if (token === "!") return never;
  const colon = token.indexOf(":");
  if (colon <= 0) throw new PolicyError(`not a check: ${JSON.stringify(token)}`);
  const kind = token.slice(0, colon);
  const match = token.slice(colon + 1);
  if (kind === "rule") {
    refs.add(match);
    return (target, creds, rules) => rules.get(match)!(target, creds, rules);
  }
  if (kind === "role") {
    return (target, creds) => {
      const m = substitute(match, target);
      return m !== undefined && (creds.roles as string[]).includes(m.toLowerCase());
    };
  }
  if (kind === "http" || kind === "https") {
    throw new PolicyError(`${kind}: checks (a remote policy server) are not supported`);
  }
  return genericCheck(kind, match);
}

type Token = { type: "(" | ")" | "and" | "or" | "not" } | { type: "check"; text: string };
/** oslo.policy's tokenizer: words split on whitespace, parentheses peeled off their ends. */
function tokenize(rule: string): Token[] {
  const tokens: Token[] = [];
  for (const word of rule.split(/\s+/).filter(Boolean)) {
    let w = word;
    while (w.startsWith("(")) {
      tokens.push({ type: "(" });
      w = w.slice(1);
    }
    let trailing = 0;
    while (w.endsWith(")")) {
      trailing++;
      w = w.slice(0, -1);
    }
    if (w) {
      const lower = w.toLowerCase();
      if (lower === "and" || lower === "or" || lower === "not") tokens.push({ type: lower });
      else if (/^(['"]).*\1$/s.test(w) && !w.includes(":")) throw new PolicyError(`a bare string is not a check: ${w}`);
      else tokens.push({ type: "check", text: w });
    }
    for (let i = 0; i < trailing; i++) tokens.push({ type: ")" });
  }
  return tokens;
}

/** expr := and ("or" and)*; and := not ("and" not)*; not := "not" not | "(" expr ")" | check. */
function parseExpression(rule: string, refs: Set<string>): Check {
  const tokens = tokenize(rule);
  if (tokens.length === 0) return always;
  let at = 0;
  const peek = () => tokens[at]?.type;
  const orExpr = (): Check => {
    const parts = [andExpr()];
    while (peek() === "or") {
      at++;
      parts.push(andExpr());
    }
    return parts.length === 1 ? parts[0] : (t, c, r) => parts.some((p) => p(t, c, r));
  };
  const andExpr = (): Check => {
    const parts = [notExpr()];
    while (peek() === "and") {
      at++;
      parts.push(notExpr());
    }
    return parts.length === 1 ? parts[0] : (t, c, r) => parts.every((p) => p(t, c, r));
  };
  const notExpr = (): Check => {
    const token = tokens[at++];
    if (!token) throw new PolicyError("ends where a check was expected");
    if (token.type === "not") {
      const inner = notExpr();
      return (t, c, r) => !inner(t, c, r);
    }
    if (token.type === "(") {
      const inner = orExpr();
      if (tokens[at++]?.type !== ")") throw new PolicyError("a parenthesis is not closed");
      return inner;
    }
    if (token.type === "check") return parseCheck(token.text, refs);
    throw new PolicyError(`unexpected "${token.type}"`);
  };
  const check = orExpr();
  if (at < tokens.length) {
    throw new PolicyError(
      `unexpected "${tokens[at].type === "check" ? (tokens[at] as { text: string }).text : tokens[at].type}"`,
    );
  }
  return check;
}

/**
 * The old list-of-lists form, as oslo.policy reads it: any inner list all of whose checks pass. [] passes; an
 * empty inner list is skipped, so a rule left with no alternative ([[]]) denies; a bare string is a list of one.
 */
function parseList(rule: unknown[], refs: Set<string>): Check {
  if (rule.length === 0) return always;
  const alternatives = rule.flatMap((inner) => {
    const checks = typeof inner === "string" ? [inner] : inner;
    if (!Array.isArray(checks) || !checks.every((c) => typeof c === "string")) {
      throw new PolicyError("a list rule must be a list of lists of checks");
    }
    if (checks.length === 0) return [];
    const compiled = checks.map((c: string) => parseCheck(c.trim(), refs));
    return [(t: Target, c: Creds, r: Map<string, Check>) => compiled.every((ch) => ch(t, c, r))];
  });
  if (alternatives.length === 0) return never;
  return (t, c, r) => alternatives.some((a) => a(t, c, r));
}

/** One rule compiled to a check, the names it refers to (rule:NAME) added to refs; PolicyError if unparsable. */
export function compileRule(rule: unknown, refs = new Set<string>()): Check {
  if (typeof rule === "string") return parseExpression(rule, refs);
  if (Array.isArray(rule)) return parseList(rule, refs);
  throw new PolicyError("a rule must be a string");
}
