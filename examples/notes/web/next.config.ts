import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  poweredByHeader: false,
  // requireRole() answers with forbidden(): app/forbidden.tsx, status 403.
  experimental: { authInterrupts: true },
  async headers() {
    return [
      {
        source: "/:path*",
        headers: [
          { key: "X-Content-Type-Options", value: "nosniff" },
          { key: "Referrer-Policy", value: "same-origin" },
          { key: "X-Frame-Options", value: "DENY" },
        ],
      },
    ];
  },
};

export default nextConfig;
