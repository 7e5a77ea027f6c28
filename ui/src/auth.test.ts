import { afterEach, describe, expect, it, vi } from "vitest";
import { hasExpired, sessionOf, signIn, storedExpired, storedSession } from "./auth";

function jwt(claims: object): string {
  const part = (o: object) =>
    btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(o))))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
  return `${part({ alg: "ES256", kid: "k1" })}.${part(claims)}.signature`;
}

describe("sessionOf", () => {
  it("reads the user and the roles claim", () => {
    const s = sessionOf(` ${jwt({ sub: "alice", roles: ["operator"] })}\n`);
    expect(s).toMatchObject({ user: "alice", roles: ["operator"], canEdit: true });
    expect(s.token).not.toMatch(/\s/);
  });
  it("lets only operators and admins edit", () => {
    expect(sessionOf(jwt({ sub: "v", roles: ["viewer"] })).canEdit).toBe(false);
    expect(sessionOf(jwt({ sub: "a", roles: "viewer admin" })).canEdit).toBe(true);
    expect(sessionOf(jwt({ sub: "n" })).roles).toEqual([]);
  });
  it("decodes base64url payloads with non-ASCII text", () => {
    expect(sessionOf(jwt({ sub: "用户-ü?>", roles: [] })).user).toBe("用户-ü?>");
  });
  it("refuses what is not a JWT", () => {
    expect(() => sessionOf("nonsense")).toThrow(/three/);
    expect(() => sessionOf("a.bm90IGpzb24.c")).toThrow();
  });
});

describe("token expiry", () => {
  afterEach(() => vi.unstubAllGlobals());
  const storage = () => {
    const held = new Map<string, string>();
    vi.stubGlobal("sessionStorage", {
      getItem: (k: string) => held.get(k) ?? null,
      setItem: (k: string, v: string) => held.set(k, v),
      removeItem: (k: string) => held.delete(k),
    });
    return held;
  };
  it("reads exp and tells an expired session", () => {
    const s = sessionOf(jwt({ sub: "a", exp: 1000 }));
    expect(s.expires).toBe(1_000_000);
    expect(hasExpired(s, 999_999)).toBe(false);
    expect(hasExpired(s, 1_000_000)).toBe(true);
    expect(hasExpired(sessionOf(jwt({ sub: "a" })))).toBe(false);
  });
  it("refuses to sign in with an expired token, and forgets a stored one that expired", () => {
    const held = storage();
    expect(() => signIn(jwt({ sub: "a", exp: 1 }))).toThrow(/expired at .*mint a new one/);
    expect(held.size).toBe(0);
    const later = Math.floor(Date.now() / 1000) + 3600;
    expect(signIn(jwt({ sub: "a", exp: later })).user).toBe("a");
    expect(storedSession()?.user).toBe("a");
    held.set("openautoglm.token", jwt({ sub: "a", exp: 1 }));
    expect(storedExpired()).toBe(true);
    expect(storedSession()).toBeNull();
    expect(held.size).toBe(0);
  });
});
