# syntax=docker/dockerfile:1
# Slotwise node image: `docker build -t slotwise .`, or `docker compose up --build`
# (docker-compose.yml). Runs `node --import tsx server/main.ts` as the
# unprivileged `node` user; TypeScript runs directly, there is no compile step.
# Set DATABASE_URL (and REDIS_URL for several nodes): see docs/operations.md.

ARG NODE_VERSION=22

# 1. Dependencies, exactly as package-lock.json says (production ones only:
#    tsx, which runs the server, is one of them). The lock names the codegen
#    folder (a development dependency), so its package.json comes along.
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/codegen/package.json ./scripts/codegen/package.json
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# 2. The browser demo (client-demo/), built with Vite into client-demo/dist,
#    which the server serves at / (the runtime stage copies only the build).
FROM node:${NODE_VERSION}-bookworm-slim AS client
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/codegen/package.json ./scripts/codegen/package.json
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY shared ./shared
COPY client-demo ./client-demo
COPY scripts/build-demo.ts ./scripts/build-demo.ts
RUN node --import tsx scripts/build-demo.ts --force

# 3. Runtime: node_modules from the first stage, the demo build from the second, the sources, nothing else.
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY server ./server
COPY shared ./shared
COPY --from=client /app/client-demo/dist ./client-demo/dist
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
