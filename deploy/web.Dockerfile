# The web tier: `next start` of Kizuna's web app, with @kizuna/next built from nextjs/ and
# installed as a copy (as scripts/setup-web.sh does). Built with the repository as context:
#   docker build -f deploy/web.Dockerfile -t kizuna-web .
# Not built by any test here (no Docker on the test machine): see deploy/README.md.
FROM node:20-bookworm-slim AS build
ENV NEXT_TELEMETRY_DISABLED=1
WORKDIR /src
COPY nextjs/ nextjs/
RUN cd nextjs && npm ci --no-audit --no-fund && npm run build
COPY web/ web/
RUN cd web && npm ci --no-audit --no-fund && npx next build

FROM node:20-bookworm-slim
ENV NODE_ENV=production NEXT_TELEMETRY_DISABLED=1
WORKDIR /app
COPY --from=build --chown=node:node /src/web/package.json /src/web/next.config.ts /src/web/tsconfig.json /src/web/.env ./
COPY --from=build --chown=node:node /src/web/public ./public
COPY --from=build --chown=node:node /src/web/node_modules ./node_modules
COPY --from=build --chown=node:node /src/web/.next ./.next
USER node
EXPOSE 3000
CMD ["node", "node_modules/next/dist/bin/next", "start", "--hostname", "0.0.0.0", "--port", "3000"]
