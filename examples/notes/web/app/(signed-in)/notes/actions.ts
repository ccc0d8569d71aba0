"use server";

import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { notesApi } from "@/lib/notes-api";

// Server actions: they run on the Next.js server with the browser's cookies,
// so the notes API sees the user's own Bearer token.

export async function addNote(form: FormData): Promise<void> {
  const res = await notesApi("/notes", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ title: String(form.get("title") ?? ""), body: String(form.get("body") ?? "") }),
    next: "/notes",
  });
  if (!res.ok) redirect("/notes?error=invalid");
  revalidatePath("/notes");
}

export async function deleteNote(form: FormData): Promise<void> {
  const id = String(form.get("id") ?? "");
  await notesApi(`/notes/${encodeURIComponent(id)}`, { method: "DELETE", next: "/notes" });
  revalidatePath("/notes");
}
