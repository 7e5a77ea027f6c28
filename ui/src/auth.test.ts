import { describe, expect, it } from "vitest";
import { sessionOf } from "./auth";

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
