# syntax=docker/dockerfile:1
# facerec Lambda image: one image, two handlers (the CDK construct picks one with CMD):
#   packages/lambda-runtime/dist/lambda/detection.handler
#   packages/lambda-runtime/dist/lambda/recognition.handler
# Build context: the repository root. The gallery must exist before building (facerec enroll --out
# gallery/gallery.json); see docs/deploy.md.

ARG NODE_IMAGE=public.ecr.aws/lambda/nodejs:20

# ---- build: compile every workspace, then drop dev dependencies -------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /build
# Manifests first, so the dependency layer is cached until a package.json or the lockfile changes.
COPY package.json package-lock.json ./
COPY models/package.json models/
COPY packages/framework/package.json packages/framework/
COPY packages/provider-onnx/package.json packages/provider-onnx/
COPY packages/provider-tfjs/package.json packages/provider-tfjs/
COPY packages/transport-memory/package.json packages/transport-memory/
COPY packages/transport-sqs/package.json packages/transport-sqs/
COPY packages/lambda-runtime/package.json packages/lambda-runtime/
COPY packages/cli/package.json packages/cli/
COPY packages/cdk/package.json packages/cdk/
COPY examples/cdk-app/package.json examples/cdk-app/
# --ignore-scripts: the root `prepare` script builds, and the sources are not copied yet.
# onnxruntime-node and sharp ship prebuilt linux-x64 binaries in their packages, so no install script is needed.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json tsconfig.build.json ./
COPY models/ models/
COPY packages/ packages/
RUN npm run build

# ---- models: pull and convert once, at build time, into the image's read-only model cache ----------------
# FACEREC_MODELS_MIRROR: a folder in the build context (relative to it) holding the upstream files (pnet.pt,
# ...), for offline builds; empty means download over HTTPS (sha256-verified either way). The context is
# bind-mounted for this step only, so the mirror never lands in a layer.
ARG FACEREC_MODELS_MIRROR=
# PROVIDER, EMBEDDER, WEIGHTS: what the functions will run (the construct passes its props). They are checked
# here by the same model registry that checks the construct's props and the functions' FACEREC_* variables:
# an unknown id fails the build, listing the valid ones. Empty WEIGHTS: the embedder's default.
ARG PROVIDER=onnx
ARG EMBEDDER=inception-resnet-v1
ARG WEIGHTS=
ENV FACEREC_CACHE_DIR=/opt/facerec/models
# `models prepare` pulls what the registry lists for the detector and this embedder, then lets the provider
# convert and cache every graph: the functions cannot write to the image, so nothing is converted at run time.
RUN --mount=type=bind,source=.,target=/context set -eu; \
    if [ -n "${FACEREC_MODELS_MIRROR}" ]; then export FACEREC_MODELS_MIRROR="/context/${FACEREC_MODELS_MIRROR}"; fi; \
    node packages/cli/dist/bin.js models prepare --provider "${PROVIDER}" --embedder "${EMBEDDER}" \
      ${WEIGHTS:+--weights "${WEIGHTS}"}
# Production dependencies only: no vitest, biome, typescript, aws-cdk-lib in the final image.
# onnxruntime-node ships every platform's binary (~290 MB); Lambda x86_64 needs only linux/x64 (~45 MB).
RUN npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/onnxruntime-node/bin/napi-v*/darwin node_modules/onnxruntime-node/bin/napi-v*/win32 \
      node_modules/onnxruntime-node/bin/napi-v*/linux/arm64 \
 && rm -rf packages/*/src packages/*/test packages/cdk examples \
 && find packages \( -name '*.test.*' -o -name '*.tsbuildinfo' -o -name '__fixtures__' \) -prune -exec rm -rf {} +

# ---- final: the Lambda Node.js 20 base with the pruned workspace tree --------------------------------------
FROM ${NODE_IMAGE}
# The node_modules/@facerec/* symlinks point into packages/, so the layout under LAMBDA_TASK_ROOT mirrors
# the repository; the handlers are ESM (packages/lambda-runtime/package.json has "type": "module").
COPY --from=build /build/package.json ${LAMBDA_TASK_ROOT}/
COPY --from=build /build/node_modules ${LAMBDA_TASK_ROOT}/node_modules
COPY --from=build /build/models ${LAMBDA_TASK_ROOT}/models
COPY --from=build /build/packages ${LAMBDA_TASK_ROOT}/packages
COPY --from=build /opt/facerec/models /opt/facerec/models
COPY gallery/ /opt/facerec/gallery/
ENV FACEREC_CACHE_DIR=/opt/facerec/models \
    FACEREC_GALLERY=/opt/facerec/gallery/gallery.json \
    NODE_ENV=production
CMD ["packages/lambda-runtime/dist/lambda/detection.handler"]
