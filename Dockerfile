# syntax=docker/dockerfile:1
# The single `ccproxy` image: `ccproxy proxy`, `ccproxy operator` or `ccproxy admin` is chosen by
# the Deployment's args. TypeScript runs as-is on Node's type stripping, so there is no compile
# step beyond the admin UI bundle.
ARG NODE_IMAGE=node:26-bookworm-slim

# 1. Everything, to build the admin UI (Vite needs the dev dependencies).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY core/package.json core/
COPY proxy/package.json proxy/
COPY operator/package.json operator/
COPY admin/package.json admin/
COPY cli/package.json cli/
COPY cdk8s/package.json cdk8s/
COPY infra/package.json infra/
COPY test/package.json test/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build -w @ccproxy/admin

# 2. Production dependencies only, for the runtime workspaces.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/core/package.json core/
COPY --from=build /src/proxy/package.json proxy/
COPY --from=build /src/operator/package.json operator/
COPY --from=build /src/admin/package.json admin/
COPY --from=build /src/cli/package.json cli/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
      -w @ccproxy/core -w @ccproxy/proxy -w @ccproxy/operator -w @ccproxy/admin -w @ccproxy/cli

# 3. The runtime: sources, migrations, the UI bundle and production node_modules; non-root.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production CCPROXY_HOST=0.0.0.0 CCPROXY_DATA_DIR=/var/lib/ccproxy
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY --from=build /src/package.json ./
COPY --from=build /src/core core
COPY --from=build /src/proxy/package.json proxy/
COPY --from=build /src/proxy/src proxy/src
COPY --from=build /src/operator/package.json operator/
COPY --from=build /src/operator/src operator/src
COPY --from=build /src/crds crds
COPY --from=build /src/admin/package.json admin/
COPY --from=build /src/admin/src admin/src
COPY --from=build /src/admin/dist admin/dist
COPY --from=build /src/cli/package.json cli/
COPY --from=build /src/cli/src cli/src
# The node image's unprivileged user (uid 1000); the chart runs with a read-only root file
# system and mounts an emptyDir at CCPROXY_DATA_DIR for the usage spool.
USER 1000:1000
# V8's garbage collector set the proxy's tail latency (docs/performance.md), so the image runs node with:
# - a 16 MiB young generation (V8 grows it to 32): under load the larger one's scavenges took
#   10-20 ms each, every ~300 ms; at 16 they take ~2 ms;
# - V8's own old-generation growing factor, kept: raising it (--heap-growing-percent=50 or 100) made
#   full GCs rarer in a fresh process, but the one-core rate fell to 500 req/s in full benchmark
#   runs (in a scratch ladder at 100, p99 at 2,000-3,000 req/s rose from 26 to 39 ms);
# - no memory reducer: it ran compacting full GCs (13-38 ms pauses) whenever traffic paused for
#   8 s, just as the next burst came in. The trade is memory the heap keeps while idle.
# `npm start` passes the same flags (a test holds them together) and the benchmark reads them from
# here. They are command-line flags because Node refuses --no-memory-reducer in NODE_OPTIONS.
ENTRYPOINT ["node", "--max-semi-space-size=16", "--no-memory-reducer", "/app/cli/src/main.ts"]
CMD ["proxy"]
