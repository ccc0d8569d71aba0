import type { Metadata } from "next";
import { connection } from "next/server";
import type { ReactNode } from "react";

export const metadata: Metadata = {
  title: { default: "Kizuna", template: "%s · Kizuna" },
  description: "Kizuna account",
};

export default async function RootLayout({ children }: { children: ReactNode }) {
  // Every page carries a per-request CSP nonce, so nothing may be prerendered.
  await connection();
  return (
    <html lang="en">
      <head>
        <link rel="stylesheet" href="/kizuna.css" />
      </head>
      <body>{children}</body>
    </html>
  );
}
