# syntax=docker/dockerfile:1
# Slotwise node image: `docker build -t slotwise .`, or `docker compose up --build`
# (docker-compose.yml). Runs `node --import tsx server/main.ts` as the
# unprivileged `node` user; TypeScript runs directly, there is no compile step.
# Set DATABASE_URL (and REDIS_URL for several nodes): see docs/operations.md.

ARG NODE_VERSION=22

# 1. Dependencies, exactly as package-lock.json says (production ones only:
#    tsx, which runs the server, is one of them).
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# A browser app built at image time (client-demo/) gets a stage of its own here:
#   FROM node:${NODE_VERSION}-bookworm-slim AS client
#   WORKDIR /app
#   COPY package.json package-lock.json ./
#   RUN npm ci --no-audit --no-fund
#   COPY . .
#   RUN <the client build command>
# and the runtime stage copies its output (COPY --from=client /app/<output> ./<output>).

# 2. Runtime: node_modules from the first stage plus the sources, nothing else.
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY server ./server
COPY shared ./shared
# DATA_DIR of the embedded Postgres, used only when DATABASE_URL is unset (not
# in docker compose); the rest of /app stays owned by root, read-only to the node.
RUN mkdir .data && chown node:node .data
USER node
EXPOSE 3000
# Ready = Postgres (and Redis, when configured) answer; /healthz is liveness only.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node itself is PID 1: SIGTERM (docker stop) drains requests and shuts down cleanly.
CMD ["node", "--import", "tsx", "server/main.ts"]
