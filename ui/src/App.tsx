import { ReactFlowProvider } from "@xyflow/react";
import { useEffect, useState } from "react";
import { wantsAnnotate } from "./annotate";
import { type Session, signOut, storedSession } from "./auth";
import { Annotate } from "./components/Annotate";
import { SignIn } from "./components/SignIn";
import { Workspace } from "./components/Workspace";

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
  const [session, setSession] = useState<Session | null>(storedSession);
  const hash = useHash();
  if (!session) return <SignIn onSignedIn={setSession} />;
  const leave = () => {
    signOut();
    setSession(null);
  };
  if (wantsAnnotate(hash, session.roles)) return <Annotate key={session.token} session={session} onSignOut={leave} />;
  return (
    <ReactFlowProvider>
      <Workspace key={session.token} session={session} onSignOut={leave} />
      {session.roles.includes("admin") && (
        <a className="to-annotate" href="#/annotate" data-testid="to-annotate">
          Annotate
        </a>
      )}
    </ReactFlowProvider>
  );
}
