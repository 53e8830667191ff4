# One multi-stage Dockerfile for every service: `--build-arg SERVICE=<name>` builds only what
# that service needs (turbo prune), and the runtime image runs as the unprivileged `node` user.
ARG NODE_VERSION=20.20-bookworm-slim

FROM node:${NODE_VERSION} AS prune
ARG SERVICE
WORKDIR /src
COPY . .
RUN npx --yes turbo@2.11.13 prune "@clarion/${SERVICE}" --docker

FROM node:${NODE_VERSION} AS build
ARG SERVICE
ENV TURBO_TELEMETRY_DISABLED=1
WORKDIR /app
COPY --from=prune /src/out/json/ .
RUN npm ci --no-audit --no-fund
COPY --from=prune /src/out/full/ .
RUN npx turbo run build --filter="@clarion/${SERVICE}..." && npm prune --omit=dev --no-audit --no-fund

FROM node:${NODE_VERSION} AS runtime
ARG SERVICE
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app /app
USER node
WORKDIR /app/services/${SERVICE}
CMD ["node", "dist/main.js"]
