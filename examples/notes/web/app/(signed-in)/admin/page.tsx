import { requireRole } from "@kizuna/next/server";
import { notesApi } from "@/lib/notes-api";

// Admins only: requireRole() shows app/forbidden.tsx (403) to anyone else.
// The notes API checks the role again on its side.
export default async function AdminPage() {
  await requireRole("admin");
  const totals = (await (await notesApi("/admin/totals")).json()) as { notes: number; authors: number };
  return (
    <main>
      <h1>Admin</h1>
      <p>
        Notes: <strong data-testid="total-notes">{totals.notes}</strong>, written by{" "}
        <strong data-testid="total-authors">{totals.authors}</strong> people.
      </p>
    </main>
  );
}
