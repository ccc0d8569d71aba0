import "server-only";
import { createApiClient } from "@kizuna/next/server";

/** The notes API, called as the signed-in user (Bearer token; a 401 takes the refresh path). */
export const notesApi = createApiClient({ baseUrl: () => process.env.NOTES_API_URL ?? "http://127.0.0.1:8001" });

export interface Note {
  id: string;
  title: string;
  body: string;
  created_at: string;
}
