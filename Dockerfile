# PFI engine: build with `docker build -t pfi-engine .`, run with
#   docker run -p 2575:2575 -p 2576:2576 -p 8080:8080 -e PFI_ADMIN_HOST=0.0.0.0 -v pfi-var:/app/var pfi-engine
# The embedded Redis (AOF, appendfsync always) keeps its data in /app/var: mount a volume there,
# or point PFI_REDIS_URL at a Redis of your own.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm install rather than npm ci: see scripts/setup.sh (optional platform builds missing from the lock).
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bench ./bench
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends redis-server tini \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production PFI_HOME=/app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY src/journal/lua ./src/journal/lua
COPY schemas ./schemas
COPY channels ./channels
COPY mappings ./mappings
RUN mkdir -p var && chown node:node var
USER node
EXPOSE 2575 2576 8080
VOLUME ["/app/var"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/cli/main.js", "start"]
