// The signed-in user: a JWT pasted by hand, kept in sessionStorage. The page only reads its claims to decide
// what to enable; the API verifies the token on every call.

const KEY = "openautoglm.token";

export interface Session {
  token: string;
  user: string;
  roles: string[];
  canEdit: boolean;
  /** When the token expires (its `exp` claim, ms since the epoch), or null when it says nothing. */
  expires: number | null;
}

function claims(token: string): Record<string, unknown> {
  const part = token.split(".")[1];
  if (!part) throw new Error("not a JWT: expected three dot-separated parts");
  const base64 = part
    .replace(/-/g, "+")
    .replace(/_/g, "/")
    .padEnd(Math.ceil(part.length / 4) * 4, "=");
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const payload: unknown = JSON.parse(new TextDecoder().decode(bytes));
  if (typeof payload !== "object" || payload === null) throw new Error("not a JWT: the payload is not an object");
  return payload as Record<string, unknown>;
}

/** The session a token opens (throws on a token that does not decode). */
export function sessionOf(token: string): Session {
  const c = claims(token.trim());
  const raw = c.roles;
  const roles = (Array.isArray(raw) ? raw : typeof raw === "string" ? raw.split(/[\s,]+/) : []).map(String);
  return {
    token: token.trim(),
    user: String(c.preferred_username ?? c.email ?? c.sub ?? "unknown"),
    roles,
    canEdit: roles.includes("operator") || roles.includes("admin"),
    expires: typeof c.exp === "number" ? c.exp * 1000 : null,
  };
}

/** Whether the session's token has expired at `now` (ms); a token without `exp` is left to the API. */
export function hasExpired(session: Session, now = Date.now()): boolean {
  return session.expires !== null && session.expires <= now;
}

/** The session kept in this tab, unless its token no longer decodes or has expired (then it is forgotten). */
export function storedSession(): Session | null {
  const token = sessionStorage.getItem(KEY);
  if (!token) return null;
  try {
    const session = sessionOf(token);
    if (!hasExpired(session)) return session;
  } catch {
    // not a JWT any more: forgotten below
  }
  sessionStorage.removeItem(KEY);
  return null;
}

/** Whether the tab held a token that has expired since (the sign-in then says so). */
export function storedExpired(): boolean {
  const token = sessionStorage.getItem(KEY);
  try {
    return token !== null && hasExpired(sessionOf(token));
  } catch {
    return false;
  }
}

/** Sign in with a pasted token (throws on one that does not decode or has already expired). */
export function signIn(token: string): Session {
  const session = sessionOf(token);
  if (hasExpired(session)) {
    throw new Error(`this token expired at ${new Date(session.expires!).toLocaleString()}: mint a new one`);
  }
  sessionStorage.setItem(KEY, session.token);
  return session;
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}
