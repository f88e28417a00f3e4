# syntax=docker/dockerfile:1
# facerec Lambda image: one image, two handlers (the CDK construct picks one with CMD):
#   packages/lambda-runtime/dist/lambda/detection.handler
#   packages/lambda-runtime/dist/lambda/recognition.handler
# Build context: the repository root. The image's task directory is exactly what `npm run lambda-tree`
# builds (scripts/lambda-tree.ts: runtime packages, production dependencies for the target architecture,
# models converted ahead of time, the gallery), so CI checks the same tree without Docker. See docs/deploy.md.

# The AWS Lambda Node.js base image, pinned to one dated release of the Node.js 22 line (a multi-architecture
# tag: linux/amd64 and linux/arm64). Update it as docs/deploy.md ("The base image") says, or override it:
#   --build-arg NODE_IMAGE=public.ecr.aws/lambda/nodejs:22@sha256:<digest>
ARG NODE_IMAGE=public.ecr.aws/lambda/nodejs:22.2025.08.04.11

# ---- build: runs on the build machine's own architecture (no emulation) and assembles the tree for the
# target's (npm installs the target's native binaries with --cpu; the models are architecture-neutral) -----
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /build
# Manifests first, so the dependency layer is cached until a package.json or the lockfile changes.
COPY package.json package-lock.json ./
COPY models/package.json models/
COPY packages/framework/package.json packages/framework/
COPY packages/provider-onnx/package.json packages/provider-onnx/
COPY packages/provider-tfjs/package.json packages/provider-tfjs/
COPY packages/transport-memory/package.json packages/transport-memory/
COPY packages/transport-sqs/package.json packages/transport-sqs/
COPY packages/gallery-postgres/package.json packages/gallery-postgres/
COPY packages/gallery-s3/package.json packages/gallery-s3/
COPY packages/lambda-runtime/package.json packages/lambda-runtime/
COPY packages/cli/package.json packages/cli/
COPY packages/cdk/package.json packages/cdk/
COPY examples/cdk-app/package.json examples/cdk-app/
# --ignore-scripts: no dependency needs its install script (onnxruntime-node's only fetches GPU extras;
# sharp and onnxruntime ship prebuilt binaries), and the root `prepare` script would build before the
# sources are copied.
# npm pinned: the base image's npm 10 would put the lockfile's optional peers (vitest, vite, tsx, …) into the
# tree (scripts/lambda-tree.ts refuses to build with it); CI builds the same tree with this npm.
RUN npm install -g npm@11.19.1 --no-audit --no-fund && npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json tsconfig.build.json ./
COPY models/ models/
COPY packages/ packages/
COPY scripts/lambda-tree.ts scripts/
RUN npm run build

# PROVIDER, EMBEDDER, WEIGHTS: what the functions run (the construct passes its props); checked by the same
# model registry that checks the construct's props and the functions' FACEREC_* variables. Empty WEIGHTS:
# the embedder's default. GALLERY: the gallery file, relative to the build context; the build fails, naming
# the problem, when it is missing or was enrolled with another embedder.
# FACEREC_MODELS_MIRROR: a folder in the build context holding the upstream model files (pnet.pt, ...), for
# offline builds; empty means download over HTTPS (sha256-verified either way). The context is bind-mounted
# for this step only, so neither the mirror nor anything else from it lands in a layer.
# PRECISION=int8 (onnx only): the recognition function runs the embedder's int8 graph, built here and
# calibrated on the face images of CALIBRATION (a folder relative to the build context), which the image keeps
# under facerec/calibration (they key the graph in the read-only model folder); without CALIBRATION, from the
# int8 ranges that ship for the embedder's weights (faceapi-resnet; lambda-tree refuses an embedder with none).
ARG PROVIDER=onnx
ARG EMBEDDER=inception-resnet-v1
ARG WEIGHTS=
ARG GALLERY=gallery/gallery.json
ARG FACEREC_MODELS_MIRROR=
ARG PRECISION=fp32
ARG CALIBRATION=
ARG TARGETARCH
RUN --mount=type=bind,source=.,target=/context set -eu; \
    if [ -n "${FACEREC_MODELS_MIRROR}" ]; then export FACEREC_MODELS_MIRROR="/context/${FACEREC_MODELS_MIRROR}"; fi; \
    case "${TARGETARCH:-amd64}" in amd64) arch=x64 ;; arm64) arch=arm64 ;; *) echo "unsupported architecture ${TARGETARCH}" >&2; exit 2 ;; esac; \
    npx tsx scripts/lambda-tree.ts --out /tree --gallery "/context/${GALLERY}" --provider "${PROVIDER}" \
      --embedder "${EMBEDDER}" ${WEIGHTS:+--weights "${WEIGHTS}"} --arch "$arch" \
      --precision "${PRECISION}" ${CALIBRATION:+--calibration "/context/${CALIBRATION}"}

# ---- final: the Lambda base image with the tree as its task directory ------------------------------------
FROM ${NODE_IMAGE}
# The node_modules/@facerec/* symbolic links point into packages/, so the tree keeps the repository's layout;
# the handlers are ESM (packages/lambda-runtime/package.json has "type": "module").
COPY --from=build /tree ${LAMBDA_TASK_ROOT}
# MALLOC_MMAP_THRESHOLD_: glibc serves allocations of 1 MiB and more (a large frame's tensors and buffers)
# from mmap, so they go back to the system when freed; by default glibc raises the threshold after the first
# large free and keeps later ones in its heap. With it, memory returns to the baseline after a 25-megapixel
# frame (packages/provider-onnx/test/large-frame.test.ts), at the same speed for ordinary frames.
# MALLOC_ARENA_MAX=2: the onnxruntime and libvips threads share two glibc heaps instead of up to 16, which
# keep less of a large frame's smaller blocks afterwards (native memory +4 to +8 % after a 25-megapixel frame,
# against +9 to +13 % by default) at the same speed in these one-thread-of-JavaScript functions. Not for
# `facerec serve` with worker threads: there it made answers ≈ 1.5× slower.
# FACEREC_CALIBRATION_DIR: the calibration faces the int8 graph was keyed by, when the build had some; empty
# (the shipped ranges) otherwise.
ARG PRECISION=fp32
ARG CALIBRATION=
ENV FACEREC_CACHE_DIR=${LAMBDA_TASK_ROOT}/facerec/models \
    FACEREC_PRECISION=${PRECISION} \
    FACEREC_CALIBRATION_DIR=${CALIBRATION:+${LAMBDA_TASK_ROOT}/facerec/calibration} \
    FACEREC_GALLERY=${LAMBDA_TASK_ROOT}/facerec/gallery.json \
    MALLOC_MMAP_THRESHOLD_=1048576 \
    MALLOC_ARENA_MAX=2 \
    NODE_ENV=production
CMD ["packages/lambda-runtime/dist/lambda/detection.handler"]
