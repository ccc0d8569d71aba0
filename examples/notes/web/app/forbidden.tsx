import Link from "next/link";

export default function Forbidden() {
  return (
    <main>
      <h1>Not allowed</h1>
      <p>This page is for administrators.</p>
      <Link href="/notes" prefetch={false}>Back to your notes</Link>
    </main>
  );
}
