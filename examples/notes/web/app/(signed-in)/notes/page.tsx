import { notesApi, type Note } from "@/lib/notes-api";
import { addNote, deleteNote } from "./actions";

// Server-rendered from the notes API, called with the user's access token.
// While that API (or Kizuna's) is down, notesApi throws ApiUnavailableError
// and the page answers 503 with a page that tries again by itself.
export default async function NotesPage({ searchParams }: { searchParams: Promise<{ error?: string }> }) {
  const res = await notesApi("/notes");
  if (!res.ok) throw new Error(`the notes API answered ${res.status}`);
  const { notes } = (await res.json()) as { notes: Note[] };
  const { error } = await searchParams;
  return (
    <main>
      <h1>Your notes</h1>
      {error && <p className="error" role="alert">A note needs a title (up to 200 characters).</p>}
      <form action={addNote} className="stack">
        <label>
          Title
          <input name="title" required maxLength={200} />
        </label>
        <label>
          Text
          <textarea name="body" rows={3} maxLength={10000} />
        </label>
        <button type="submit">Add note</button>
      </form>
      <ul className="notes">
        {notes.map((note) => (
          <li key={note.id} data-note={note.id}>
            <strong>{note.title}</strong>
            <p>{note.body}</p>
            <form action={deleteNote}>
              <input type="hidden" name="id" value={note.id} />
              <button type="submit" className="quiet">Delete</button>
            </form>
          </li>
        ))}
      </ul>
    </main>
  );
}
