// Sign-in: paste a JWT. The page reads its claims (user, roles); the API checks its signature.
import { type FormEvent, useState } from "react";
import { type Session, signIn } from "../auth";

export function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    try {
      onSignedIn(signIn(token));
    } catch (e) {
      setError(`That token does not decode: ${(e as Error).message}`);
    }
  };
  return (
    <form className="sign-in" onSubmit={submit}>
      <h1>Open-AutoGLM canvas</h1>
      <label>
        Bearer token (JWT)
        <textarea data-testid="token" value={token} onChange={(e) => setToken(e.target.value)} rows={5} />
      </label>
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
