import { ReactFlowProvider } from "@xyflow/react";
import { useState } from "react";
import { type Session, signOut, storedSession } from "./auth";
import { SignIn } from "./components/SignIn";
import { Workspace } from "./components/Workspace";

export function App() {
  const [session, setSession] = useState<Session | null>(storedSession);
  if (!session) return <SignIn onSignedIn={setSession} />;
  return (
    <ReactFlowProvider>
      <Workspace
        key={session.token}
        session={session}
        onSignOut={() => {
          signOut();
          setSession(null);
        }}
      />
    </ReactFlowProvider>
  );
}
