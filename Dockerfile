# syntax=docker/dockerfile:1
# install-cni image: the istio-cni node agent (/usr/local/bin/install-cni, a launcher for the agent in
# /usr/local/lib/istio-cni) and the CNI plugin it installs on every
# node (/opt/cni/bin/istio-cni), on an empty base: no shell, no package manager, only files we can name (the SBOM
# lists each one).
#
# Build (BuildKit; no Docker engine is needed to test the layout: `npm run image:rootfs` assembles the same root):
#   docker buildx build -t <registry>/install-cni:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/install-cni:0.1.0 --push .
#   (the build stage runs on each target platform, QEMU for a foreign one: bun's compile target, the Debian tools
#   and the SBOM's architectures all follow it; only linux/amd64 has been built and tested)
#   docker buildx build --target sbom --output type=local,dest=out .   # out/sbom.cdx.json
#   (podman build / buildah bud take the same arguments.)
#
# Base image pin: replace the digest placeholder with the current digest of the tag, and bump it the same way
# when the tag moves (Debian point release, Node patch release):
#   docker buildx imagetools inspect docker.io/library/node:24-bookworm-slim --format '{{json .Manifest.Digest}}'
#   (or: crane digest docker.io/library/node:24-bookworm-slim)
# The final stage is `scratch`, so the build image is the only base to pin. Its Debian release (bookworm) is the
# source of every runtime library in the image.
ARG BUILD_IMAGE=docker.io/library/node:24-bookworm-slim@sha256:0000000000000000000000000000000000000000000000000000000000000000

FROM ${BUILD_IMAGE} AS build
# The runtime tools the agent execs (copied into the image with their libraries by scripts/image-rootfs.ts):
# iptables (legacy + nft variants, -save/-restore), nftables (nft), util-linux (nsenter), iproute2 (ip),
# ca-certificates (CA bundle); gcc and libc6-dev build the static launcher (scripts/install-cni-launcher.c).
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables nftables iproute2 util-linux ca-certificates netbase \
      gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY . .
# The tests are CI's gate on the same commit (`bash .ci/run`): several read the shared conformance goldens, which
# live beside the repository, outside this build context.
RUN npm run lint \
 && npm run typecheck \
 && npm run build \
 && npm run image:rootfs \
 && npm run sbom

# SBOM as a build output (not inside the image): --target sbom --output type=local,dest=<dir>
FROM scratch AS sbom
COPY --from=build /src/build/sbom.cdx.json /sbom.cdx.json

FROM scratch
COPY --from=build /src/build/rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/cni/bin
ENV XTABLES_LOCKFILE=/tmp/xtables.lock
WORKDIR /opt/cni/bin
LABEL org.opencontainers.image.source="https://github.com/istio-cni-node-ts/istio-cni-node-ts" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.title="install-cni"
CMD ["install-cni"]
