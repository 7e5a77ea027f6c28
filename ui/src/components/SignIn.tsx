// Sign-in: paste a JWT. The page reads its claims (user, roles, expiry); the API checks its signature. `notice`
// says why the page came back here (an expired token).
import { type FormEvent, useState } from "react";
import { type Session, signIn } from "../auth";

export function SignIn({ onSignedIn, notice }: { onSignedIn: (session: Session) => void; notice?: string | null }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    try {
      onSignedIn(signIn(token));
    } catch (e) {
      setError(`That token cannot be used: ${(e as Error).message}`);
    }
  };
  return (
    <form className="sign-in" onSubmit={submit}>
      <h1>Open-AutoGLM canvas</h1>
      {notice && !error && (
        <p className="notice" data-testid="sign-in-notice" role="alert">
          {notice}
        </p>
      )}
      <label>
        Bearer token (JWT)
        <textarea data-testid="token" value={token} onChange={(e) => setToken(e.target.value)} rows={5} />
      </label>
      <p className="help">
        Ask an admin for a token, or mint one:{" "}
        <code>python -m openautoglm.serve.tokens --key KEY.pem --kid KID --sub NAME --role operator</code> (valid 1 h
        unless <code>--ttl</code> says otherwise).
      </p>
      <button data-testid="sign-in" type="submit" disabled={!token.trim()}>
        Sign in
      </button>
      {error && (
        <p className="status error" data-testid="status">
          {error}
        </p>
      )}
    </form>
  );
}
