import { ReactFlowProvider } from "@xyflow/react";
import { useCallback, useEffect, useState } from "react";
import { wantsAnnotate } from "./annotate";
import { SIGN_IN_EXPIRED } from "./api";
import { type Session, signOut, storedExpired, storedSession } from "./auth";
import { Annotate } from "./components/Annotate";
import { SignIn } from "./components/SignIn";
import { Workspace } from "./components/Workspace";

/** setTimeout's longest delay (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The address's hash (`#/annotate` opens the Annotate page), followed as it changes. */
function useHash(): string {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const follow = () => setHash(window.location.hash);
    window.addEventListener("hashchange", follow);
    return () => window.removeEventListener("hashchange", follow);
  }, []);
  return hash;
}

export function App() {
  // Read before storedSession() forgets an expired token, so that the sign-in can say why it is back.
  const [notice, setNotice] = useState<string | null>(() => (storedExpired() ? SIGN_IN_EXPIRED : null));
  const [session, setSession] = useState<Session | null>(storedSession);
  const hash = useHash();
  /** Back to the sign-in, saying why (the API refused the token: expired or invalid). */
  const expire = useCallback((why: string) => {
    signOut();
    setSession(null);
    setNotice(why);
  }, []);
  // The token's own expiry, when it says one: back to the sign-in then, not at the next refused call.
  useEffect(() => {
    const left = session?.expires ? session.expires - Date.now() : null;
    if (left === null || left > MAX_TIMER_MS) return; // a far expiry: the API's 401 says it, if the tab lives so long
    const timer = window.setTimeout(() => expire(SIGN_IN_EXPIRED), Math.max(0, left));
    return () => window.clearTimeout(timer);
  }, [expire, session]);
  if (!session)
    return (
      <SignIn
        notice={notice}
        onSignedIn={(s) => {
          setNotice(null);
          setSession(s);
        }}
      />
    );
  const leave = () => {
    signOut();
    setSession(null);
    setNotice(null);
  };
  if (wantsAnnotate(hash, session.roles)) return <Annotate key={session.token} session={session} onSignOut={leave} />;
  return (
    <ReactFlowProvider>
      <Workspace key={session.token} session={session} onSignOut={leave} onExpired={expire} />
      {session.roles.includes("admin") && (
        <a className="to-annotate" href="#/annotate" data-testid="to-annotate">
          Annotate
        </a>
      )}
    </ReactFlowProvider>
  );
}
