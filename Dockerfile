# One image for every role: `streamseg producer|worker|sink|serve`.
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip NODE_ENV=production
COPY package.json package-lock.json ./
# NODE_ENV=production makes npm leave out devDependencies, and the build needs two of them
# (typescript, @types/node): include them here, prune them after the build.
RUN npm install --no-audit --no-fund --include=dev
COPY tsconfig.json ./
COPY src ./src
COPY bin ./bin
COPY models ./models
RUN npx tsc -p tsconfig.json && npm prune --omit=dev
ENV STREAMSEG_MODEL=/app/models/default STREAMSEG_OUT=/data/out
ENTRYPOINT ["node", "/app/bin/streamseg.js"]
